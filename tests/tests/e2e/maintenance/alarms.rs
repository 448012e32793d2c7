//! Alarms held back during maintenance (health, Alertmanager, escalation on
//! a controllable clock) and resumed after.

use super::*;

/// The public status page (no login) once it contains `needle`.
async fn public_page(server: &TestServer, needle: &str) -> String {
    let anon = reqwest::Client::new();
    poll(
        Duration::from_secs(15),
        &format!("the public page says {needle:?}"),
        async || {
            let html = anon
                .get(server.url("/status"))
                .send()
                .await
                .map_err(|e| e.to_string())?
                .text()
                .await
                .map_err(|e| e.to_string())?;
            html.contains(needle).then_some(html.clone()).ok_or(html)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_are_suppressed_during_maintenance_and_resume_after() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    let broker = service(&admin, json!({"name": "broker", "tier": "critical"})).await;
    service(&admin, json!({"name": "billing", "tier": "application"})).await;
    let target = Target::start(Behaviour::Ok("ok".into()));
    let check = http_check(&op, broker.id, &target.url()).await;
    run_check(&op, check.id).await;
    wait_board(&op, "broker operational", |b| {
        listed(b, &["broker", "billing"])
            && on_board(b, "broker").health == ServiceHealth::Operational
    })
    .await;

    let (_, p) = start(
        &op,
        services_scope(&["broker"]),
        "Broker upgrade",
        in_minutes(60),
    )
    .await;
    wait_period(&op, p.id, PeriodStatus::Active).await;

    // It goes down during maintenance: the board says maintenance (observed
    // down), the detector records a suppression instead of an incident.
    target.set(Behaviour::Status(500));
    run_check(&op, check.id).await;
    let b = wait_board(&op, "broker observed down", |b| {
        listed(b, &["broker"])
            && on_board(b, "broker")
                .maintenance
                .as_ref()
                .map(|m| m.observed)
                == Some(ServiceHealth::Down)
    })
    .await;
    assert_eq!(on_board(&b, "broker").health, ServiceHealth::Maintenance);
    // The public status page says maintenance, not outage, and no reason.
    let res = op
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/services/{}/public", broker.id),
            &json!({"public": true, "public_name": "Messaging"}),
        )
        .await;
    ok_json::<ServiceStatus>(res, "publishing broker").await;
    let html = public_page(&server, "Under maintenance").await;
    assert!(!html.contains("Outage"), "{html}");
    assert!(
        !html.contains("Broker upgrade"),
        "the reason stays inside: {html}"
    );
    let d = poll(
        Duration::from_secs(30),
        "a health suppression",
        async || {
            let d = detail(&op, p.id).await;
            d.suppressions
                .iter()
                .any(|s| s.source == "health" && s.key == "service:broker")
                .then_some(d.clone())
                .ok_or(format!("{:?}", d.suppressions))
        },
    )
    .await;
    assert!(d.period.suppressed >= 1);
    assert!(
        d.timeline.iter().any(|e| e.kind == "suppressed"),
        "{:?}",
        d.timeline.iter().map(|e| &e.kind).collect::<Vec<_>>()
    );
    // Checks keep running, and the detector keeps deciding: still nothing.
    run_check(&op, check.id).await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    let l: IncidentList = op.json("/api/v1/incidents?status=all").await;
    assert_eq!(l.total, 0, "no incident during maintenance: {:#?}", l.items);
    let d = detail(&op, p.id).await;
    assert_eq!(
        d.suppressions
            .iter()
            .filter(|s| s.source == "health")
            .count(),
        1,
        "recorded once per period: {:?}",
        d.suppressions
    );

    // Alertmanager: an alert for broker is held back; one for billing is not.
    let token: Value = ok_json(
        admin
            .post("/api/v1/tokens", &json!({"name": "am", "role": "operator"}))
            .await,
        "token",
    )
    .await;
    let am = Api::with_token(&server.base, token["token"].as_str().unwrap());
    let alert = |service: &str, fp: &str| {
        json!({
            "version": "4", "groupKey": "{}:{alertname=\"Down\"}", "status": "firing",
            "receiver": "opsdeck", "commonLabels": {"alertname": "Down"},
            "externalURL": "http://alertmanager:9093",
            "alerts": [{
                "status": "firing",
                "labels": {"alertname": "Down", "severity": "critical", "service": service},
                "annotations": {"summary": format!("{service} is down")},
                "startsAt": "2026-11-23T01:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph", "fingerprint": fp
            }]
        })
    };
    let r: Value = ok_json(
        am.post(
            "/api/v1/integrations/alertmanager",
            &alert("broker", "fp-broker"),
        )
        .await,
        "broker alert",
    )
    .await;
    assert_eq!(r["opened"], json!([]), "{r}");
    let d = detail(&op, p.id).await;
    assert!(
        d.suppressions
            .iter()
            .any(|s| s.source == "alertmanager" && s.key == "fp-broker"),
        "{:?}",
        d.suppressions
    );
    assert!(d.period.suppressed >= 2);
    let r: Value = ok_json(
        am.post(
            "/api/v1/integrations/alertmanager",
            &alert("billing", "fp-billing"),
        )
        .await,
        "billing alert",
    )
    .await;
    let billing_incident = r["opened"][0].as_i64().expect("billing's incident opens");
    let l: IncidentList = op.json("/api/v1/incidents?status=all").await;
    assert_eq!(
        l.items.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![billing_incident],
        "only billing's"
    );

    // The end while broker is still down: its incident opens after all.
    end(&op, p.id, "").await;
    wait_period(&op, p.id, PeriodStatus::Ended).await;
    let incident = poll(Duration::from_secs(30), "broker's incident", async || {
        let l: IncidentList = op.json("/api/v1/incidents").await;
        l.items
            .iter()
            .find(|i| {
                i.source == "health"
                    && i.services
                        .iter()
                        .any(|s| s.name == "broker" && s.role == "root")
            })
            .cloned()
            .ok_or(format!(
                "{:?}",
                l.items.iter().map(|i| &i.title).collect::<Vec<_>>()
            ))
    })
    .await;
    assert_eq!(incident.title, "broker is down");
    let b = board(&op).await;
    assert_eq!(on_board(&b, "broker").health, ServiceHealth::Down);
    let html = public_page(&server, "Outage").await;
    assert!(!html.contains("Under maintenance"), "{html}");
    // And Alertmanager's alert for broker opens one now.
    let r: Value = ok_json(
        am.post(
            "/api/v1/integrations/alertmanager",
            &alert("broker", "fp-broker"),
        )
        .await,
        "broker alert after",
    )
    .await;
    if r["opened"].as_array().map(Vec::len) != Some(1) {
        // Seen once in a full run and never alone: say all there is to know.
        let l: IncidentList = op.json("/api/v1/incidents?status=all").await;
        let all: Vec<_> = l
            .items
            .iter()
            .map(|i| (i.id, &i.title, &i.source, i.status))
            .collect();
        let periods: Value = op.json("/api/v1/maintenance/periods?status=all").await;
        panic!(
            "the broker alert after the end opened no incident: {r}\nincidents: {all:?}\nperiods: {periods}\nperiod {}: {}",
            p.id,
            describe(&detail(&op, p.id).await)
        );
    }
}

/// Five ticks at `now` (see escalation.rs: a tick skips rows another
/// transaction holds; repeating one at the same `now` is idempotent).
async fn settle(state: &opsdeck::state::AppState, now: DateTime<Utc>) -> Vec<(i64, i32)> {
    let mut fired = Vec::new();
    for _ in 0..5 {
        let r = escalation::tick(state, now).await.unwrap();
        fired.extend(r.fired);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fired
}

async fn escalation_messages(pool: &PgPool, incident: i64) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT level FROM notifications WHERE incident_id = $1 AND kind = 'escalation' ORDER BY level",
    )
    .bind(incident)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_is_held_during_maintenance_and_fires_after() {
    let server = TestServer::start_with(|s| s.escalations = false).await;
    let receiver = Receiver::start().await;
    opsdeck_e2e::flows::escalation::set_up_paging(&server.pool, &[0, 600], &receiver.url("/hook"))
        .await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    let broker = service(&admin, json!({"name": "broker", "tier": "critical"})).await;
    let target = Target::start(Behaviour::Status(500));
    let check = http_check(&op, broker.id, &target.url()).await;
    run_check(&op, check.id).await;
    let incident = poll(Duration::from_secs(30), "broker's incident", async || {
        let l: IncidentList = op.json("/api/v1/incidents").await;
        l.items.first().cloned().ok_or("none yet".to_string())
    })
    .await;
    let t0 = incident.triggered_at;
    // The primary is paged at once.
    assert_eq!(settle(&server.state, t0).await, vec![(incident.id, 0)]);

    // Maintenance for its root service: the secondary is held back.
    let (_, p) = start(
        &op,
        services_scope(&["broker"]),
        "Broker failover drill",
        in_minutes(120),
    )
    .await;
    wait_period(&op, p.id, PeriodStatus::Active).await;
    let fired = settle(&server.state, t0 + ChronoDuration::seconds(601)).await;
    assert!(fired.is_empty(), "held during maintenance: {fired:?}");
    assert_eq!(
        escalation_messages(&server.pool, incident.id).await,
        vec![0]
    );
    let d = detail(&op, p.id).await;
    let key = format!("incident:{}:level:1", incident.id);
    assert!(
        d.suppressions
            .iter()
            .any(|s| s.source == "escalation" && s.key == key),
        "{key} in {:?}",
        d.suppressions
    );

    // After the period ends, the next tick fires the level still due.
    end(&op, p.id, "").await;
    wait_period(&op, p.id, PeriodStatus::Ended).await;
    let fired = settle(&server.state, t0 + ChronoDuration::seconds(602)).await;
    assert_eq!(fired, vec![(incident.id, 1)]);
    assert_eq!(
        escalation_messages(&server.pool, incident.id).await,
        vec![0, 1]
    );
    let got = receiver.wait_for("/hook", 2, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 2);
}
