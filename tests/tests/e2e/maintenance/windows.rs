//! Maintenance windows: weekly occurrences in a time zone across a DST
//! change, an occurrence in progress becoming a period that ends by itself.

use super::*;

/// Europe/Berlin's offset at `t`: CEST (+2 h) from the last Sunday of March
/// 01:00 UTC to the last Sunday of October 01:00 UTC, CET (+1 h) otherwise.
fn berlin_offset(t: DateTime<Utc>) -> ChronoDuration {
    let switch = |month: u32| {
        Utc.from_utc_datetime(&last_sunday(t.year(), month).and_hms_opt(1, 0, 0).unwrap())
    };
    if t >= switch(3) && t < switch(10) {
        ChronoDuration::hours(2)
    } else {
        ChronoDuration::hours(1)
    }
}

fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let mut d = NaiveDate::from_ymd_opt(year, month + 1, 1)
        .unwrap()
        .pred_opt()
        .unwrap();
    while d.weekday() != Weekday::Sun {
        d = d.pred_opt().unwrap();
    }
    d
}

fn berlin(t: DateTime<Utc>) -> NaiveDateTime {
    (t + berlin_offset(t)).naive_utc()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_recur_in_their_time_zone_and_occurrences_end_by_themselves() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    let viewer = server.user(Role::Viewer).await;
    service(&admin, json!({"name": "ledger", "tier": "critical"})).await;

    // Every Wednesday 22:00–23:00 in Berlin, from a Wednesday 18 days before
    // next year's switch to summer time: five occurrences, the last two in
    // CEST (20:00 UTC instead of 21:00).
    let switch = last_sunday(Utc::now().year() + 1, 3);
    let first_day = switch - ChronoDuration::days(18);
    assert_eq!(first_day.weekday(), Weekday::Wed);
    let starts_at = Utc.from_utc_datetime(&first_day.and_hms_opt(21, 0, 0).unwrap());
    let weekly = json!({"title": "Weekly patching", "reason": "OS updates",
        "scope": services_scope(&["ledger"]),
        "starts_at": rfc3339(starts_at), "ends_at": rfc3339(starts_at + ChronoDuration::hours(1)),
        "repeat": "weekly", "weekdays": ["wed"], "time_zone": "Europe/Berlin"});
    let preview: WindowPreview = ok_json(
        op.post("/api/v1/maintenance/windows/preview", &weekly)
            .await,
        "preview",
    )
    .await;
    assert!(preview.summary.contains("Wednesday"), "{}", preview.summary);
    assert!(preview.summary.contains("22:00"), "{}", preview.summary);
    assert!(preview.summary.contains("23:00"), "{}", preview.summary);
    assert!(
        preview.summary.contains("Europe/Berlin"),
        "{}",
        preview.summary
    );
    assert_eq!(preview.next.len(), 5, "{:?}", preview.next);
    assert_eq!(preview.next[0].starts_at, starts_at);
    for o in &preview.next {
        let local = berlin(o.starts_at);
        assert_eq!(local.weekday(), Weekday::Wed, "{o:?}");
        assert_eq!((local.hour(), local.minute()), (22, 0), "{o:?}");
        assert_eq!(o.ends_at - o.starts_at, ChronoDuration::hours(1), "{o:?}");
    }
    let utc_hours: Vec<u32> = preview.next.iter().map(|o| o.starts_at.hour()).collect();
    assert_eq!(utc_hours, vec![21, 21, 21, 20, 20], "across the DST switch");
    for pair in preview.next.windows(2) {
        assert_eq!(
            pair[1].starts_at.date_naive() - pair[0].starts_at.date_naive(),
            ChronoDuration::days(7)
        );
    }

    // Bad windows are refused.
    let mut bad_zone = weekly.clone();
    bad_zone["time_zone"] = json!("Mars/Olympus_Mons");
    let mut backwards = weekly.clone();
    backwards["ends_at"] = json!(rfc3339(starts_at - ChronoDuration::hours(1)));
    let mut bad_day = weekly.clone();
    bad_day["weekdays"] = json!(["funday"]);
    let mut bad_service = weekly.clone();
    bad_service["scope"] = services_scope(&["nosuchservice"]);
    for (what, body) in [
        ("an unknown time zone", &bad_zone),
        ("an end before the start", &backwards),
        ("an unknown weekday", &bad_day),
        ("an unknown service", &bad_service),
    ] {
        for path in [
            "/api/v1/maintenance/windows/preview",
            "/api/v1/maintenance/windows",
        ] {
            if path.ends_with("preview") && what == "an unknown service" {
                continue; // the preview is about timing
            }
            let res = op.post(path, body).await;
            let got = res.status().as_u16();
            let text = res.text().await.unwrap_or_default();
            assert_eq!(got, 400, "{what} at {path}: {text}");
        }
    }
    expect_error(
        viewer.post("/api/v1/maintenance/windows", &weekly).await,
        403,
    )
    .await;

    // Created: listed with the same occurrences and summary; no period yet.
    let w = create_window(&op, &weekly).await;
    assert_eq!(w.created_by, "operator-user");
    assert_eq!(w.next, preview.next);
    assert_eq!(w.summary, preview.summary);
    let windows: Vec<MaintenanceWindow> = viewer.json("/api/v1/maintenance/windows").await;
    assert_eq!(windows.iter().map(|w| w.id).collect::<Vec<_>>(), vec![w.id]);
    assert_eq!(windows[0].next, preview.next);
    // Updated: two days a week now.
    let mut twice = weekly.clone();
    twice["title"] = json!("Patching, twice a week");
    twice["weekdays"] = json!(["wed", "sat"]);
    let updated: MaintenanceWindow = ok_json(
        op.send(
            reqwest::Method::PUT,
            &format!("/api/v1/maintenance/windows/{}", w.id),
            &twice,
        )
        .await,
        "updating the window",
    )
    .await;
    assert_eq!(updated.def.title, "Patching, twice a week");
    let days: Vec<Weekday> = updated
        .next
        .iter()
        .map(|o| berlin(o.starts_at).weekday())
        .collect();
    assert_eq!(
        days[..4],
        [Weekday::Wed, Weekday::Sat, Weekday::Wed, Weekday::Sat],
        "{days:?}"
    );
    assert!(periods(&viewer, "all").await.is_empty());

    // A short window in progress now: one period, active, ending by itself.
    let now = whole(Utc::now());
    let short_end = now + ChronoDuration::seconds(12);
    let short = create_window(
        &op,
        &once_window(
            "Quick restart",
            services_scope(&["ledger"]),
            now - ChronoDuration::minutes(1),
            short_end,
        ),
    )
    .await;
    assert_eq!(
        short.next.len(),
        1,
        "the occurrence in progress: {:?}",
        short.next
    );
    let p = window_period(&viewer, short.id).await;
    assert_eq!(p.ends_at, short_end);
    assert_eq!(p.title, "Quick restart");
    let active = wait_period(&viewer, p.id, PeriodStatus::Active).await;
    assert_eq!(active.period.window_id, Some(short.id));
    wait_board(&viewer, "ledger in maintenance by the window", |b| {
        listed(b, &["ledger"])
            && on_board(b, "ledger")
                .maintenance
                .as_ref()
                .map(|m| m.period_id)
                == Some(p.id)
    })
    .await;
    // Deleting the window lets the occurrence in progress run to its end.
    assert_eq!(
        op.delete(&format!("/api/v1/maintenance/windows/{}", short.id))
            .await
            .status(),
        204
    );
    assert_eq!(
        detail(&viewer, p.id).await.period.status,
        PeriodStatus::Active
    );
    let ended = wait_period(&viewer, p.id, PeriodStatus::Ended).await;
    let ended_at = ended.period.ended_at.expect("ended_at");
    assert!(
        ended_at >= short_end && ended_at < short_end + ChronoDuration::seconds(10),
        "ended by itself at its end: {ended_at} (end {short_end})"
    );
    wait_board(&viewer, "ledger out of maintenance", |b| {
        listed(b, &["ledger"])
            && on_board(b, "ledger").maintenance.is_none()
            && b.maintenance.is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = periods(&viewer, "all").await;
    assert_eq!(all.len(), 1, "one period per occurrence: {all:#?}");
    let windows: Vec<MaintenanceWindow> = viewer.json("/api/v1/maintenance/windows").await;
    assert_eq!(windows.iter().map(|w| w.id).collect::<Vec<_>>(), vec![w.id]);

    let audit = maintenance_audit(&admin).await;
    assert_eq!(count(&audit, "maintenance.window.create"), 2, "{audit:#?}");
    assert_eq!(count(&audit, "maintenance.window.update"), 1);
    assert_eq!(count(&audit, "maintenance.window.delete"), 1);
    assert!(
        count(&audit, "maintenance.window.preview") >= 1,
        "previews are on record"
    );
    assert_every_request_audited(&admin).await;
}
