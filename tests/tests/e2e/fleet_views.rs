//! The fleet views (issue 22): the services page read a page at a time,
//! searched and filtered on the server; and the engines overview, one row
//! per engine with its containers, services, pending updates and its
//! host's figures from the host checks naming it, on an engine of this
//! test's own (a dedicated private dockerd, so the counts are exact).

use std::time::Duration;

use bollard::query_parameters::StopContainerOptions;
use opsdeck_e2e::browser::{screenshots, Browser};
use opsdeck_e2e::dockerd::PrivateDockerd;
use opsdeck_e2e::flows::checks::{metric, run_check};
use opsdeck_e2e::flows::containers::connect_engine;
use opsdeck_e2e::flows::services::create_service;
use opsdeck_e2e::relay::Relay;
use opsdeck_e2e::server::{Api, TestServer, PASSWORD};
use opsdeck_e2e::stack::{ServiceSpec, Stack};
use opsdeck_e2e::util::{expect_error, ok_json, poll, release};
use opsdeck_wire::{
    Check, CheckStatus, EngineOverview, ProbeResult, Role, ServicePage, StatusBoard, Tier,
};
use serde_json::json;

async fn page(api: &Api, query: &str) -> ServicePage {
    api.json(&format!("/api/v1/services/page?{query}")).await
}

fn names(p: &ServicePage) -> Vec<&str> {
    p.items.iter().map(|o| o.service.name.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_page_is_searched_filtered_and_paged_on_the_server() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let viewer = server.user(Role::Viewer).await;
    for (name, tier) in [
        ("web-a", "application"),
        ("web-b", "application"),
        ("proxy", "critical"),
        ("cache", "support"),
        ("db", "critical"),
    ] {
        create_service(&admin, name, tier, &[]).await;
    }
    // Mapped to a container no engine has: a problem.
    let _: serde_json::Value = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": "ghost", "tier": "support", "container_name": "odk-no-such-container"}),
            )
            .await,
        "a mapped service",
    )
    .await;

    let first = page(&viewer, "limit=3").await;
    assert_eq!(names(&first), ["db", "proxy", "web-a"], "tier, then name");
    assert_eq!(
        (first.total, first.matched, first.offset, first.limit),
        (6, 6, 0, 3)
    );
    assert_eq!(first.problems, 1, "{first:?}");
    let second = page(&viewer, "limit=3&offset=3").await;
    assert_eq!(names(&second), ["web-b", "cache", "ghost"]);
    assert!(page(&viewer, "limit=3&offset=6").await.items.is_empty());

    let found = page(&viewer, "q=WEB").await;
    assert_eq!(names(&found), ["web-a", "web-b"]);
    assert_eq!((found.total, found.matched, found.limit), (6, 2, 100));
    let problems = page(&viewer, "problems=true").await;
    assert_eq!(names(&problems), ["ghost"]);
    assert_ne!(problems.items[0].run_state, opsdeck_wire::RunState::Running);
    assert_eq!(page(&viewer, "limit=100000").await.limit, 500, "capped");
    let refused = expect_error(viewer.get("/api/v1/services/page?limit=many").await, 400).await;
    assert!(refused.contains("limit"), "{refused}");
    server.stop().await;
}

async fn add_host_check(op: &Api, name: &str, spec: serde_json::Value) -> Check {
    ok_json(
        op.post(
            "/api/v1/checks",
            &json!({"name": name, "interval_s": 86_400, "timeout_ms": 60_000,
                    "fail_after": 1, "recover_after": 1, "spec": spec}),
        )
        .await,
        name,
    )
    .await
}

async fn row(api: &Api, engine: &str) -> EngineOverview {
    let rows: Vec<EngineOverview> = api.json("/api/v1/engines/overview").await;
    rows.into_iter()
        .find(|r| r.engine.name == engine)
        .unwrap_or_else(|| panic!("{engine} is not in the overview"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engines_overview_shows_each_hosts_containers_services_updates_and_figures() {
    let Ok(engine) = tokio::task::spawn_blocking(PrivateDockerd::dedicated)
        .await
        .expect("starting a dedicated engine")
    else {
        return;
    };
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let viewer = server.user(Role::Viewer).await;
    let specs = [
        ServiceSpec {
            name: "api",
            image: "odk/api:1",
            requires: &[],
            tier: None,
            description: "",
            docs: None,
        },
        ServiceSpec {
            name: "worker",
            image: "odk/worker:1",
            requires: &[],
            tier: None,
            description: "",
            docs: None,
        },
    ];
    let stack = Stack::up(&engine, "fleetview", &specs)
        .await
        .expect("the stack");
    connect_engine(&admin, "fleet1", &engine.host()).await;

    let mut ids = Vec::new();
    for s in &specs {
        let created: opsdeck_wire::Service = ok_json(
            admin
                .post(
                    "/api/v1/services",
                    &json!({"name": format!("fv-{}", s.name), "compose_project": stack.project,
                            "compose_service": s.name}),
                )
                .await,
            "a service on the stack",
        )
        .await;
        ids.push(created.id);
    }
    // Names the engine without a container there: counted as on it.
    create_named(&admin).await;

    // Newer digest for one service's tag: one pending update.
    sqlx::query(
        "INSERT INTO image_status (service_id, image_ref, running_digest, latest_digest, checked_at)
         VALUES ($1, 'odk/busybox:1', 'sha256:aaaa', 'sha256:bbbb', now())",
    )
    .bind(ids[0])
    .execute(&server.pool)
    .await
    .expect("an image status");

    stack
        .docker()
        .stop_container(
            &stack.container("worker"),
            Some(StopContainerOptions {
                t: Some(0),
                ..Default::default()
            }),
        )
        .await
        .expect("stopping worker");
    let r = poll(
        Duration::from_secs(30),
        "the overview sees 1 of 2 running",
        async || {
            let r = row(&viewer, "fleet1").await;
            if (r.running, r.engine.containers) == (1, 2) {
                Ok(r)
            } else {
                Err(format!("{} of {}", r.running, r.engine.containers))
            }
        },
    )
    .await;
    assert_eq!((r.services, r.updates), (3, 1), "{r:?}");
    assert_eq!(r.host.checks, 0);
    assert_eq!(r.host.status, None);
    assert!(r.host.memory_pct.is_none() && r.host.disk.is_none());

    let memory = add_host_check(
        &admin,
        "fleet1 memory",
        json!({"kind": "host", "resource": "memory", "engine": "fleet1",
               "warning_pct": 80.0, "critical_pct": 95.0}),
    )
    .await;
    let disk = add_host_check(
        &admin,
        "fleet1 disk",
        json!({"kind": "host", "resource": "disk", "path": "/", "engine": "fleet1",
               "warning_pct": 99.5, "critical_pct": 99.9}),
    )
    .await;
    let mem = run_check(&admin, memory.id).await;
    let dsk = run_check(&admin, disk.id).await;
    let r = poll(
        Duration::from_secs(30),
        "the overview shows both checks' figures",
        async || {
            let r = row(&viewer, "fleet1").await;
            if r.host.memory_pct.is_some() && r.host.disk.is_some() {
                Ok(r)
            } else {
                Err(format!("{:?}", r.host))
            }
        },
    )
    .await;
    assert_eq!(r.host.checks, 2);
    assert_eq!(r.host.memory_pct, Some(metric(&mem, "memory_pct")));
    let d = r.host.disk.as_ref().expect("a disk figure");
    assert_eq!(
        (d.path.as_str(), d.kind.as_str(), d.pct),
        ("/", "disk", metric(&dsk, "disk_pct"))
    );
    // The newest reading's uptime (the disk check ran last).
    assert_eq!(r.host.uptime_s, Some(metric(&dsk, "uptime_s")));
    assert_eq!(r.host.at, Some(dsk.at));
    assert_eq!(r.host.status, Some(mem.status.max(dsk.status)));
    assert!(r.host.cpu_pct.is_none(), "no CPU check: no CPU figure");
    assert!(r.host.status.is_some_and(|s| s != CheckStatus::Unknown));

    let spa = opsdeck_e2e::server::spa();
    if spa.is_ok() {
        overview_in_the_browser(&server, &admin, &engine, &mem).await;
    }
    drop(stack);
    server.stop().await;
    release(engine).await;
}

/// The engines page: the row's figures as the API gave them; a second
/// engine without host checks sorts last by disk, first once reversed; the
/// filters.
async fn overview_in_the_browser(
    server: &TestServer,
    admin: &Api,
    engine: &PrivateDockerd,
    mem: &ProbeResult,
) {
    let dir = tempfile::Builder::new()
        .prefix("odk-fleetview-")
        .tempdir_in("/tmp")
        .expect("a temporary directory");
    let mut relay = Relay::new(
        &dir.path().join("e2.sock"),
        &engine.dir().join("docker.sock"),
    );
    relay.start();
    connect_engine(admin, "fleet2", &relay.endpoint()).await;
    let Ok(b) = Browser::start().await else {
        return;
    };
    b.sign_in(&server.url("/login"), "admin-user", PASSWORD)
        .await;
    b.goto(&server.url("/engines")).await;
    b.wait_for_text("[data-testid=engine-containers-fleet1]", "1/2")
        .await;
    let shown = format!("{:.1} %", metric(mem, "memory_pct"));
    b.wait_for_text("[data-testid=engine-memory-fleet1]", &shown)
        .await;
    b.wait_for_text("[data-testid=engine-cpu-fleet1]", "—")
        .await;
    b.wait_for_contains("[data-testid=engine-updates-fleet1]", "1 update")
        .await;
    b.wait_for_contains("[data-testid=engine-row-fleet2]", "no host checks")
        .await;
    b.screenshot(&screenshots().join("engines-overview.png"))
        .await;

    let order = async || {
        b.execute(
            "return [...document.querySelectorAll('[data-testid^=engine-row-]')]\
               .map(r => r.dataset.testid.slice(11)).join(',')",
        )
        .await
    };
    for want in ["fleet1,fleet2", "fleet2,fleet1"] {
        // The table renders again on each click: find the head anew.
        b.wait_for("[data-testid=engines-sort-worst-disk]")
            .await
            .click()
            .await
            .expect("sorting by disk");
        poll(Duration::from_secs(10), want, async || {
            let got = order().await;
            (got == want).then_some(()).ok_or(got)
        })
        .await;
    }
    b.execute(
        "const s = document.querySelector('[data-testid=engines-show]');\
         s.value = 'down'; s.dispatchEvent(new Event('change')); return ''",
    )
    .await;
    b.wait_for_contains("main", "No engines match").await;
    b.close().await;
    drop(relay);
}

async fn create_named(admin: &Api) {
    let _: serde_json::Value = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": "fv-named", "engine": "fleet1", "container_name": "odk-not-there"}),
            )
            .await,
        "a service naming the engine",
    )
    .await;
}

/// Rows matching `css` on the page now.
async fn count(b: &Browser, css: &str) -> usize {
    let n = b
        .execute(&format!(
            "return String(document.querySelectorAll('{css}').length)"
        ))
        .await;
    n.parse().unwrap_or_else(|_| panic!("a count: {n}"))
}

/// Waits until `css` matches `want` elements.
async fn until_count(b: &Browser, css: &str, want: usize) {
    poll(
        Duration::from_secs(30),
        &format!("{want} × {css}"),
        async || match count(b, css).await {
            n if n == want => Ok(()),
            n => Err(format!("{n}")),
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_inventory_pages_on_the_services_page_and_the_dashboard() {
    let spa = opsdeck_e2e::server::spa();
    if spa.is_err() {
        return;
    }
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    for i in 0..120 {
        create_service(&admin, &format!("svc-{i:03}"), "application", &[]).await;
    }
    // The board's first screen: the tier's first 50 in the dashboard's
    // order (all unknown here, so by name), and the tier's real size.
    let first: StatusBoard = poll(
        Duration::from_secs(30),
        "the board's first screen with 120 services",
        async || {
            let b: StatusBoard = admin.json("/api/v1/status?first=50").await;
            match b
                .tier_totals
                .as_ref()
                .and_then(|t| t.get(&Tier::Application))
            {
                Some(120) => Ok(b),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let shown: Vec<&str> = first.services.iter().map(|s| s.name.as_str()).collect();
    let want: Vec<String> = (0..50).map(|i| format!("svc-{i:03}")).collect();
    assert_eq!(shown, want);
    assert_eq!(first.counts.values().sum::<u32>(), 120, "counts cover all");
    assert!(
        admin
            .json::<StatusBoard>("/api/v1/status")
            .await
            .tier_totals
            .is_none(),
        "the whole board has no tier totals"
    );
    let refused = expect_error(admin.get("/api/v1/status?first=0").await, 400).await;
    assert!(refused.contains("first"), "{refused}");

    let Ok(b) = Browser::start().await else {
        return;
    };
    b.sign_in(&server.url("/login"), "admin-user", PASSWORD)
        .await;

    // The services page: 100 rows, the range, the next page.
    b.goto(&server.url("/services")).await;
    b.wait_for_contains("[data-testid=services-range]", "1–100 of 120")
        .await;
    until_count(&b, "[data-testid^=service-row-]", 100).await;
    b.screenshot(&screenshots().join("services-paged.png"))
        .await;
    b.wait_for("[data-testid=services-next]")
        .await
        .click()
        .await
        .expect("next page");
    b.wait_for_contains("[data-testid=services-range]", "101–120 of 120")
        .await;
    until_count(&b, "[data-testid^=service-row-]", 20).await;
    b.wait_for("[data-testid=service-row-svc-119]").await;
    assert!(!b.exists("[data-testid=service-row-svc-000]").await);
    // A search goes to the server and starts from the first page again.
    b.wait_for("[data-testid=services-search]")
        .await
        .send_keys("svc-07")
        .await
        .expect("typing");
    // svc-070 … svc-079.
    until_count(&b, "[data-testid^=service-row-]", 10).await;
    b.wait_for("[data-testid=service-row-svc-079]").await;
    assert!(
        !b.exists("[data-testid=services-pager]").await,
        "one page holds every match"
    );

    // The dashboard: the first 100 rows of the tier, then the rest on request.
    b.goto(&server.url("/")).await;
    until_count(&b, "[data-testid=status-tier-application] .health-row", 100).await;
    b.wait_for_contains("[data-testid=show-more-application]", "Show 20 more")
        .await
        .click()
        .await
        .expect("show more");
    until_count(&b, "[data-testid=status-tier-application] .health-row", 120).await;
    assert!(!b.exists("[data-testid=show-more-application]").await);
    b.close().await;
    server.stop().await;
}
