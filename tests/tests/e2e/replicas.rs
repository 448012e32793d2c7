//! Several replicas on one Postgres: three real `opsdeck serve` processes
//! on one database, as a load balancer would spread users over them.
//!
//! * **Sessions** live in Postgres: a login on one replica is valid on the
//!   others, and a logout on one ends it on all.
//! * **Live events** fan out through `LISTEN/NOTIFY`: an incident declared
//!   on one replica reaches the SSE clients of the other two, and a check's
//!   state change made by the replica that probes shows on the status
//!   board of every replica.
//! * **Health checks are leased**: one replica holds the engine's advisory
//!   lock and probes; the target sees one replica's probes, not three. When
//!   that replica is killed with SIGKILL another takes the lease and the
//!   probes go on.
//!
//! Schedules (one run per tick with two processes), escalations and the
//! notification outbox (each message once with two processes) have their
//! own two-process tests in `schedules.rs`, `escalation.rs` and `notify.rs`.

use std::time::Duration;

use opsdeck_e2e::flows::services::board;
use opsdeck_e2e::process::OpsdeckProcess;
use opsdeck_e2e::server::Api;
use opsdeck_e2e::targets::{Behaviour, Target};
use opsdeck_e2e::util::{ok_json, poll, process_database, sse_until};
use opsdeck_wire::{Check, Incident, Service, ServiceHealth};
use serde_json::{json, Value};

const LEASE_TAKEN: &str = "health engine lease taken";
const INTERVAL_S: u64 = 5;

/// The same client (its cookie jar) talking to another replica: cookies
/// are kept per host, not per port, as behind a load balancer.
fn on(api: &Api, p: &OpsdeckProcess) -> Api {
    Api {
        client: api.client.clone(),
        base: p.base().to_owned(),
    }
}

fn holders(ps: &[&OpsdeckProcess]) -> Vec<usize> {
    ps.iter()
        .enumerate()
        .filter(|(_, p)| p.log_tail(usize::MAX).contains(LEASE_TAKEN))
        .map(|(i, _)| i)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_sessions_live_events_and_one_check_runner() {
    let (url, _pool) = process_database().await;
    let procs = [
        OpsdeckProcess::start(&url, &[]).await,
        OpsdeckProcess::start(&url, &[]).await,
        OpsdeckProcess::start(&url, &[]).await,
    ];
    for p in &procs {
        p.wait_ready().await;
    }
    let [a, b, c] = &procs;

    // Sessions: log in on A, use the session on B and C.
    let at_a = a.login("ops").await;
    let (at_b, at_c) = (on(&at_a, b), on(&at_a, c));
    for (name, api) in [("A", &at_a), ("B", &at_b), ("C", &at_c)] {
        let me: Value = ok_json(api.get("/api/v1/me").await, name).await;
        assert_eq!(me["username"], "ops", "{name}: {me}");
    }

    // Live events: SSE clients on B and C, the incident declared on A.
    let stream_b = at_b.get("/api/v1/incidents/events").await;
    let stream_c = at_c.get("/api/v1/incidents/events").await;
    assert_eq!(stream_b.status(), 200);
    assert_eq!(stream_c.status(), 200);
    let declared: Incident = ok_json(
        at_a.post(
            "/api/v1/incidents",
            &json!({"title": "Replicated pages", "severity": "P3"}),
        )
        .await,
        "declare on A",
    )
    .await;
    for (name, stream) in [("B", stream_b), ("C", stream_c)] {
        let (_, data) = sse_until(
            stream,
            Duration::from_secs(15),
            &format!("the incident on {name}'s stream"),
            |event, data| event == "incident" && data.contains("Replicated pages"),
        )
        .await;
        let seen: Incident = serde_json::from_str(&data).expect("incident JSON");
        assert_eq!(seen.id, declared.id, "{name}");
    }

    // Checks: one replica holds the lease and probes.
    let target = Target::start(Behaviour::Ok("fine".into()));
    let svc: Service = ok_json(
        at_b.post(
            "/api/v1/services",
            &json!({"name": "web", "tier": "application"}),
        )
        .await,
        "service on B",
    )
    .await;
    let check: Check = ok_json(
        at_c.post(
            "/api/v1/checks",
            &json!({"service_id": svc.id, "name": "http", "interval_s": INTERVAL_S,
                    "timeout_ms": 2000, "fail_after": 1, "recover_after": 1,
                    "spec": {"kind": "http", "url": target.url()}}),
        )
        .await,
        "check on C",
    )
    .await;
    let all = [a, b, c];
    let holder = poll(
        Duration::from_secs(30),
        "one lease holder",
        async || match holders(&all).as_slice() {
            [one] => Ok(*one),
            other => Err(format!("holders: {other:?}")),
        },
    )
    .await;
    poll(Duration::from_secs(30), "the first probe", async || {
        if target.hits() > 0 {
            Ok(())
        } else {
            Err("no probe yet".into())
        }
    })
    .await;
    // Over 4 intervals one runner probes 4 or 5 times; three runners would
    // probe 12 or more.
    let from = target.hits();
    tokio::time::sleep(Duration::from_secs(4 * INTERVAL_S)).await;
    let probes = target.hits() - from;
    assert!(
        (3..=6).contains(&probes),
        "{probes} probes in {}s at a {INTERVAL_S}s interval: one replica probes",
        4 * INTERVAL_S
    );
    assert_eq!(holders(&all), [holder], "still one holder");

    // The probing replica's results reach every replica's board.
    target.set(Behaviour::Status(503));
    for (name, api) in [("A", &at_a), ("B", &at_b), ("C", &at_c)] {
        poll(
            Duration::from_secs(45),
            &format!("web down on {name}'s board"),
            async || {
                let s = board(api).await;
                match s.services.iter().find(|x| x.service_id == svc.id) {
                    Some(x) if x.health == ServiceHealth::Down => Ok(()),
                    other => Err(format!("{:?}", other.map(|x| x.health))),
                }
            },
        )
        .await;
    }
    target.set(Behaviour::Ok("fine".into()));

    // The holder is killed: another replica takes the lease, probes go on.
    all[holder].kill().await;
    let rest: Vec<&OpsdeckProcess> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != holder)
        .map(|(_, p)| *p)
        .collect();
    let next = poll(
        Duration::from_secs(30),
        "a new lease holder",
        async || match holders(&rest).as_slice() {
            [one] => Ok(*one),
            other => Err(format!("holders among the rest: {other:?}")),
        },
    )
    .await;
    let after_kill = target.hits();
    poll(
        Duration::from_secs(30),
        "probes after the kill",
        async || {
            if target.hits() >= after_kill + 2 {
                Ok(())
            } else {
                Err(format!("{} probes", target.hits() - after_kill))
            }
        },
    )
    .await;
    let survivor = on(&at_a, rest[next]);
    poll(Duration::from_secs(45), "web up again", async || {
        let s = board(&survivor).await;
        match s.services.iter().find(|x| x.service_id == svc.id) {
            Some(x) if x.health == ServiceHealth::Operational => Ok(()),
            other => Err(format!("{:?}", other.map(|x| x.health))),
        }
    })
    .await;
    let latest: Check = survivor.json(&format!("/api/v1/checks/{}", check.id)).await;
    assert_eq!(latest.id, check.id);

    // Logout on one surviving replica ends the session on the other too.
    let res = survivor.post("/api/v1/auth/logout", &json!({})).await;
    assert!(res.status().is_success(), "logout: {}", res.status());
    let other = on(&at_a, rest[1 - next]);
    assert_eq!(other.get("/api/v1/me").await.status(), 401);

    for p in rest {
        p.stop().await;
    }
}
