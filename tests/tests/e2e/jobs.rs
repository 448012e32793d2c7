//! The jobs registry (`opsdeck::jobs`): a one-process task ticks in one of
//! two processes (registries) on one database and moves to the other when
//! the first stops; an every-process task ticks in both; and every task of
//! a server shows in `/metrics` with its ticks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opsdeck::config::Secret;
use opsdeck::jobs::{Pace, Registry, Scope, Task, TaskMetrics};
use opsdeck_e2e::server::{Api, TestServer};

use opsdeck_e2e::util::poll;

fn counting(name: &'static str, scope: Scope, count: &Arc<AtomicUsize>) -> Task {
    Task::every(
        name,
        Duration::from_millis(100),
        scope,
        count.clone(),
        |c| async move {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(Pace::Normal)
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_process_task_runs_in_one_of_two_processes_and_moves_when_it_stops() {
    let (_db, options) = opsdeck_e2e::pg::fresh_database().await;
    let pool = opsdeck::db::pool(options).await.expect("pool");
    let (a_one, b_one) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (a_all, b_all) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let a = Registry::new(TaskMetrics::default());
    a.add(counting("test.one", Scope::OneProcess, &a_one));
    a.add(counting("test.all", Scope::EveryProcess, &a_all));
    a.start(&pool);
    poll(
        Duration::from_secs(10),
        "the first registry takes the lock",
        async || match a_one.load(Ordering::SeqCst) {
            0 => Err("no tick yet".to_owned()),
            _ => Ok(()),
        },
    )
    .await;
    let b = Registry::new(TaskMetrics::default());
    b.add(counting("test.one", Scope::OneProcess, &b_one));
    b.add(counting("test.all", Scope::EveryProcess, &b_all));
    b.start(&pool);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(a_one.load(Ordering::SeqCst) >= 10, "the holder ticks");
    assert_eq!(b_one.load(Ordering::SeqCst), 0, "the other process waits");
    assert!(a_all.load(Ordering::SeqCst) > 0 && b_all.load(Ordering::SeqCst) > 0);

    // The holder stops: its lock goes with its connection, the other takes
    // over (it tries every 5 s) and the first ticks no more.
    a.shutdown();
    poll(
        Duration::from_secs(15),
        "the second registry takes over",
        async || match b_one.load(Ordering::SeqCst) {
            0 => Err("no tick yet".to_owned()),
            _ => Ok(()),
        },
    )
    .await;
    let stopped = a_one.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        a_one.load(Ordering::SeqCst),
        stopped,
        "a stopped registry ticks no more"
    );
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_background_task_of_a_server_shows_in_metrics() {
    const TOKEN: &str = "scrape-me-0123456789abcdef";
    let server = TestServer::start_with(|s| {
        s.metrics_token = Some(Secret::new(TOKEN));
        s.daily_report = true;
    })
    .await;
    let scraper = Api::with_token(&server.base, TOKEN);
    poll(Duration::from_secs(20), "task metrics", async || {
        let text = scraper
            .get("/metrics")
            .await
            .text()
            .await
            .unwrap_or_default();
        let all = [
            r#"opsdeck_task_runs_total{task="runs.claim"}"#,
            r#"opsdeck_task_runs_total{task="escalation"}"#,
            r#"opsdeck_task_leader{task="checks.leader"} 1"#,
            r#"opsdeck_task_last_duration_seconds{task="runs.reap"}"#,
        ];
        match all.iter().find(|m| !text.contains(*m)) {
            None => Ok(()),
            Some(m) => Err(format!("no {m}")),
        }
    })
    .await;
    // Registered by `serve` before it started them (the metrics say it did).
    let names: Vec<&str> = server.state.jobs.names().iter().map(|(n, _)| *n).collect();
    for expected in [
        "runs.claim",
        "runs.heartbeat",
        "runs.reap",
        "notifications.claim",
        "schedules",
        "escalation",
        "detection",
        "maintenance",
        "maintenance.marks",
        "backups.sweep",
        "report",
        "checks.leader",
        "checks.scheduler",
        "fanout",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} is registered: {names:?}"
        );
    }
    server.stop().await;
}
