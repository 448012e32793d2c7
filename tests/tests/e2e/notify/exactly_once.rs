//! Exactly once: an escalation step queued once however often it runs, two
//! server processes sending each notification once.

use super::*;

#[tokio::test]
async fn an_escalation_step_is_queued_once_however_often_it_runs() {
    let s = quiet().await;
    let admin = s.user(Role::Admin).await;
    let rx = Receiver::start().await;
    for (name, kind, path) in [("hook", "webhook", "/hook"), ("pager", "sms", "/sms")] {
        add_channel(
            &admin,
            json!({"name": name, "kind": kind, "config": {"url": rx.url(path)}, "severities": ["P1"]}),
        )
        .await;
    }
    let a = person(&s.pool, "A", None, Some("+1001"), None).await;
    let b = person(&s.pool, "B", None, Some("+1002"), None).await;
    let id = incident(&s.pool, "Twice", Severity::P1).await;
    let first = escalate(
        &s.pool,
        id,
        Severity::P1,
        "Twice",
        0,
        &[a.clone(), b.clone()],
    )
    .await;
    assert_eq!(first.len(), 3);
    let again = escalate(
        &s.pool,
        id,
        Severity::P1,
        "Twice",
        0,
        &[a.clone(), b.clone()],
    )
    .await;
    assert!(
        again.is_empty(),
        "the same step queues nothing twice: {again:?}"
    );
    // The next level is a new step.
    let next = escalate(&s.pool, id, Severity::P1, "Twice", 1, &[a]).await;
    assert_eq!(next.len(), 2);
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE incident_id = $1")
            .bind(id)
            .fetch_one(&s.pool)
            .await
            .unwrap();
    assert_eq!(count, 5);
    for n in first.iter().chain(&next) {
        wait_status(&s.pool, *n, "sent").await;
    }
    assert_eq!(rx.requests().len(), 5);
}

#[tokio::test]
async fn two_server_processes_send_each_notification_exactly_once() {
    let (database, options) = opsdeck_e2e::pg::fresh_database().await;
    let url = opsdeck_e2e::pg::url(&database);
    let pool = opsdeck::db::pool(options).await.expect("pool");
    let rx = Receiver::start().await;
    let channel: i64 = sqlx::query_scalar(
        "INSERT INTO channels (name, kind, config) VALUES ('hook', 'webhook', $1) RETURNING id",
    )
    .bind(json!({"url": rx.url("/hook")}))
    .fetch_one(&pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO channel_rules (severity, channel_id) VALUES (1, $1)")
        .bind(channel)
        .execute(&pool)
        .await
        .unwrap();
    let env = [("OPSDECK_RUN_LEASE_SECS", "5")];
    let first = OpsdeckProcess::start(&url, &env).await;
    let second = OpsdeckProcess::start(&url, &env).await;
    first.wait_ready().await;
    second.wait_ready().await;

    // 20 escalation steps (one message each), committed at once.
    let id = incident(&pool, "Everything", Severity::P1).await;
    let mut tx = pool.begin().await.unwrap();
    let mut ids = Vec::new();
    for level in 0..20 {
        ids.extend(
            enqueue_escalation(
                &mut tx,
                &IncidentMessage {
                    incident_id: id,
                    severity: Severity::P1,
                    title: "Everything".into(),
                    body: format!("level {level}"),
                },
                level,
                &[],
            )
            .await
            .unwrap(),
        );
    }
    tx.commit().await.unwrap();
    assert_eq!(ids.len(), 20);
    poll(WAIT * 2, "all 20 sent", async || {
        let sent: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM notifications WHERE incident_id = $1 AND status = 'sent'",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
        if sent == 20 {
            Ok(())
        } else {
            Err(format!("{sent} sent"))
        }
    })
    .await;
    // Give a duplicate time to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = rx.requests_to("/hook");
    let mut per_id: BTreeMap<i64, usize> = BTreeMap::new();
    for r in &got {
        *per_id
            .entry(r.json()["notification_id"].as_i64().unwrap())
            .or_default() += 1;
    }
    assert_eq!(got.len(), 20, "{per_id:?}");
    assert_eq!(per_id.len(), 20);
    assert!(per_id.values().all(|&n| n == 1), "{per_id:?}");
    let tries: Vec<i32> =
        sqlx::query_scalar("SELECT attempts FROM notifications WHERE incident_id = $1")
            .bind(id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(tries.iter().all(|&t| t == 1), "{tries:?}");
    assert!(first.exited().is_none() && second.exited().is_none());
}
