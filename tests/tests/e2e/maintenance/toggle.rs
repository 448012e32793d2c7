//! Maintenance for chosen services toggled over the API: the board's mark
//! and banner, idempotent start, extend, end, validation, audit, timeline.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_for_chosen_services_marks_the_board_and_is_audited() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    let viewer = server.user(Role::Viewer).await;
    let ledger = service(&admin, json!({"name": "ledger", "tier": "critical"})).await;
    service(&admin, json!({"name": "search", "tier": "support"})).await;
    service(&admin, json!({"name": "billing", "tier": "application"})).await;
    let target = Target::start(Behaviour::Ok("ok".into()));
    let check = http_check(&op, ledger.id, &target.url()).await;
    run_check(&op, check.id).await;
    wait_board(&viewer, "ledger operational", |b| {
        listed(b, &["ledger"]) && on_board(b, "ledger").health == ServiceHealth::Operational
    })
    .await;

    // Validation at the boundary; nothing is created.
    let scope = services_scope(&["ledger", "search"]);
    let reason = "Upgrading the ledger database to 16.4";
    for (what, body) in [
        (
            "until in the past",
            json!({"scope": scope, "reason": reason, "until": rfc3339(in_minutes(-5))}),
        ),
        (
            "until more than 7 days ahead",
            json!({"scope": scope, "reason": reason,
                   "until": rfc3339(in_minutes(8 * 24 * 60))}),
        ),
        (
            "an empty service list",
            json!({"scope": services_scope(&[]), "reason": reason,
                   "until": rfc3339(in_minutes(60))}),
        ),
        (
            "a reason over 2000 characters",
            json!({"scope": scope, "reason": "x".repeat(2001),
                   "until": rfc3339(in_minutes(60))}),
        ),
        (
            "an unknown stack",
            json!({"scope": stack_scope("no-such-stack"), "reason": reason,
                   "until": rfc3339(in_minutes(60))}),
        ),
    ] {
        let res = op.post("/api/v1/maintenance/periods", &body).await;
        let got = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        assert_eq!(got, 400, "{what}: {text}");
    }
    let msg = expect_error(
        start_raw(
            &op,
            services_scope(&["ledger", "nosuchservice"]),
            reason,
            in_minutes(60),
        )
        .await,
        400,
    )
    .await;
    assert!(msg.contains("nosuchservice"), "{msg}");
    expect_error(
        start_raw(&viewer, scope.clone(), reason, in_minutes(60)).await,
        403,
    )
    .await;
    assert!(periods(&viewer, "all").await.is_empty());

    // An operator turns it on.
    let until = in_minutes(60);
    let (status, p) = start(&op, scope.clone(), reason, until).await;
    assert_eq!(status, 202);
    assert_eq!(
        p.scope,
        MaintenanceScope::Services {
            services: vec!["ledger".into(), "search".into()]
        }
    );
    assert_eq!(sorted(p.services.clone()), vec!["ledger", "search"]);
    assert_eq!(p.started_by, "operator-user");
    assert_eq!(p.reason, reason);
    assert_eq!(p.ends_at, until);
    assert_eq!(p.window_id, None);
    assert!(p.status.is_open(), "{:?}", p.status);
    let active = wait_period(&viewer, p.id, PeriodStatus::Active).await;
    assert!(active.period.enabled_at.is_some());

    // The board marks both services and shows the banner; billing is not in it.
    let b = wait_board(&viewer, "ledger and search in maintenance", |b| {
        listed(b, &["ledger", "search", "billing"])
            && on_board(b, "ledger").health == ServiceHealth::Maintenance
            && on_board(b, "search").health == ServiceHealth::Maintenance
    })
    .await;
    for name in ["ledger", "search"] {
        let mark = on_board(&b, name)
            .maintenance
            .clone()
            .unwrap_or_else(|| panic!("{name} has no maintenance mark"));
        assert_eq!(mark.period_id, p.id);
        assert_eq!(mark.started_by, "operator-user");
        assert_eq!(mark.until, until);
        assert_eq!(mark.reason, reason);
    }
    assert_eq!(
        on_board(&b, "ledger")
            .maintenance
            .as_ref()
            .unwrap()
            .observed,
        ServiceHealth::Operational,
        "the mark keeps what the checks say"
    );
    let billing = on_board(&b, "billing");
    assert_ne!(billing.health, ServiceHealth::Maintenance);
    assert!(billing.maintenance.is_none());
    assert_eq!(b.maintenance.len(), 1, "{:?}", b.maintenance);
    let banner = &b.maintenance[0];
    assert_eq!(banner.period_id, p.id);
    assert_eq!(banner.started_by, "operator-user");
    assert_eq!(banner.until, until);
    assert_eq!(banner.reason, reason);
    assert_eq!(banner.status, PeriodStatus::Active);
    assert_eq!(sorted(banner.services.clone()), vec!["ledger", "search"]);

    // The same scope again: the same period, nothing changes.
    let (again_status, again) = start(&op, scope.clone(), "something else", in_minutes(90)).await;
    assert_eq!(again_status, 200);
    assert_eq!(again.id, p.id);
    assert_eq!(again.ends_at, until, "nothing changes");
    assert_eq!(periods(&viewer, "all").await.len(), 1);
    let audit = maintenance_audit(&admin).await;
    assert_eq!(count(&audit, "maintenance.start"), 1);
    assert_eq!(
        count(&audit, "maintenance.start.unchanged"),
        1,
        "the repeat is on record"
    );

    // Extend: refused into the past or beyond 7 days, by a viewer too.
    let extend = |until: DateTime<Utc>| json!({ "until": rfc3339(until) });
    let extend_path = format!("/api/v1/maintenance/periods/{}/extend", p.id);
    expect_error(op.post(&extend_path, &extend(in_minutes(-1))).await, 400).await;
    expect_error(
        op.post(&extend_path, &extend(in_minutes(8 * 24 * 60)))
            .await,
        400,
    )
    .await;
    expect_error(
        viewer.post(&extend_path, &extend(in_minutes(120))).await,
        403,
    )
    .await;
    let later = in_minutes(120);
    let extended: MaintenancePeriod =
        ok_json(op.post(&extend_path, &extend(later)).await, "extend").await;
    assert_eq!(extended.ends_at, later);
    assert_eq!(extended.status, PeriodStatus::Active);
    wait_board(&viewer, "the mark shows the new end", |b| {
        listed(b, &["ledger"])
            && on_board(b, "ledger").maintenance.as_ref().map(|m| m.until) == Some(later)
            && b.maintenance.first().map(|m| m.until) == Some(later)
    })
    .await;
    assert_eq!(periods(&viewer, "open").await.len(), 1);

    // End early: back to what the checks say, banner gone.
    let end_path = format!("/api/v1/maintenance/periods/{}/end", p.id);
    expect_error(viewer.post(&end_path, &json!({})).await, 403).await;
    let ending = end(&op, p.id, "ledger upgraded").await;
    assert_eq!(ending.id, p.id);
    let ended = wait_period(&viewer, p.id, PeriodStatus::Ended).await;
    assert_eq!(ended.period.ended_by.as_deref(), Some("operator-user"));
    assert!(ended.period.ended_at.is_some());
    let b = wait_board(&viewer, "ledger and search out of maintenance", |b| {
        b.maintenance.is_empty()
            && listed(b, &["ledger", "search"])
            && on_board(b, "ledger").maintenance.is_none()
            && on_board(b, "search").maintenance.is_none()
    })
    .await;
    assert_eq!(on_board(&b, "ledger").health, ServiceHealth::Operational);
    assert_eq!(
        on_board(&b, "search").health,
        ServiceHealth::Unknown,
        "no checks"
    );
    // Not open any more.
    expect_error(op.post(&end_path, &json!({})).await, 409).await;
    expect_error(op.post(&extend_path, &extend(in_minutes(30))).await, 409).await;
    assert!(periods(&viewer, "open").await.is_empty());
    let all = periods(&viewer, "all").await;
    assert_eq!(all.iter().map(|p| p.id).collect::<Vec<_>>(), vec![p.id]);
    expect_error(
        viewer.get("/api/v1/maintenance/periods?status=nope").await,
        400,
    )
    .await;

    // Its timeline and the audit log.
    let kinds: Vec<&str> = ended.timeline.iter().map(|e| e.kind.as_str()).collect();
    for k in ["requested", "active", "ended"] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    assert_eq!(kinds.first(), Some(&"requested"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"ended"), "{kinds:?}");
    let audit = maintenance_audit(&admin).await;
    for action in ["maintenance.start", "maintenance.extend", "maintenance.end"] {
        let entries: Vec<&AuditEntry> = audit
            .iter()
            .filter(|e| e.action == action && e.outcome == Outcome::Success)
            .collect();
        assert_eq!(entries.len(), 1, "{action}: {audit:#?}");
        assert_eq!(entries[0].actor, "operator-user");
    }

    // A new start after the end is a new period.
    let (status, next) = start(&op, scope, reason, in_minutes(30)).await;
    assert_eq!(status, 202);
    assert_ne!(next.id, p.id);
    let newest = periods(&viewer, "all").await;
    assert_eq!(newest.first().map(|p| p.id), Some(next.id), "newest first");
    assert_every_request_audited(&admin).await;
}
