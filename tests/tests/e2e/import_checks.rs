//! Monitored at import (issue 28): a compose import proposes checks and
//! applies the selected ones with the inventory in one transaction.
//!
//! - The demo: the MosAIc stand-in runs on the private engine (labelled as
//!   compose would), `docker/demo/mosaic.compose.yml` is imported through
//!   the API with its proposals (the database ones left out, as `make demo`
//!   does), the board is "not monitored yet" before and operational after
//!   because the checks say so, and stopping a container turns it to an
//!   outage without anyone adding anything.
//! - The contract: preview creates nothing; unticked checks are not
//!   created; a database check given a password stores it sealed;
//!   re-imports do not duplicate; bad keys are refused with their field;
//!   viewers and operators are refused; the CLI creates the same checks.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bollard::query_parameters::StopContainerOptionsBuilder;
use opsdeck_e2e::flows::audit::audit;
use opsdeck_e2e::flows::containers::wait_engine;
use opsdeck_e2e::proc::free_port;
use opsdeck_e2e::server::{Api, TestServer, SECRET_KEY};
use opsdeck_e2e::stack::Stack;
use opsdeck_e2e::util::{engine, expect_error, ok_json, poll, release};
use opsdeck_wire::{
    Check, CheckSpec, EngineState, ImportPlan, Overall, Role, ServiceHealth, StatusBoard,
};
use serde_json::json;

/// The demo file's loopback port of each stand-in (as in scripts/demo.sh).
const DEMO_PORTS: [(&str, u16); 9] = [
    ("npm", 18081),
    ("postgres", 18082),
    ("mariadb", 18083),
    ("gitea", 18084),
    ("bookstack", 18085),
    ("woodpecker", 18086),
    ("redis", 18087),
    ("mcp", 18088),
    ("portainer", 18089),
];
/// The demo's web services: they get an HTTP check from their healthcheck.
const WEB: [&str; 6] = [
    "npm",
    "gitea",
    "bookstack",
    "woodpecker",
    "mcp",
    "portainer",
];

fn demo_file() -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    std::fs::read_to_string(format!("{root}/docker/demo/mosaic.compose.yml"))
        .expect("docker/demo/mosaic.compose.yml")
}

/// The demo file with each stand-in's port moved to `ports` (placeholders
/// first, so a new port never matches an old one).
fn with_ports(text: &str, ports: &BTreeMap<String, u16>) -> String {
    let mut t = text.to_owned();
    for (svc, p) in DEMO_PORTS {
        t = t.replace(&p.to_string(), &format!("@@{svc}@@"));
    }
    for (svc, _) in DEMO_PORTS {
        t = t.replace(&format!("@@{svc}@@"), &ports[svc].to_string());
    }
    t
}

async fn compose(api: &Api, body: serde_json::Value) -> reqwest::Response {
    api.post("/api/v1/inventory/compose", &body).await
}

async fn checks(api: &Api) -> Vec<Check> {
    api.json("/api/v1/checks").await
}

async fn board(api: &Api) -> StatusBoard {
    api.json("/api/v1/status").await
}

fn keys(plan: &ImportPlan, f: impl Fn(&opsdeck_wire::ProposedCheck) -> bool) -> BTreeSet<String> {
    plan.checks
        .iter()
        .filter(|c| f(c))
        .map(|c| c.key.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_import_monitors_the_stack_and_a_stopped_container_turns_it_red() {
    let Some(engine) = engine().await else { return };
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let viewer = server.user(Role::Viewer).await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "main", "endpoint": engine.host()}),
        )
        .await;
    assert_eq!(res.status(), 201);
    wait_engine(&viewer, "main", EngineState::Connected).await;
    let stack = Stack::mosaic(&engine).await.expect("bringing up MosAIc");
    let text = with_ports(&demo_file(), &stack.ports);

    // Nothing imported: nothing says the stack is fine.
    assert_eq!(board(&viewer).await.overall, Overall::Unmonitored);

    // The preview proposes, creates nothing.
    let base = json!({"content": text, "project": stack.project, "engine": "main"});
    let mut preview = base.clone();
    preview["apply"] = json!(false);
    let plan: ImportPlan = ok_json(compose(&admin, preview).await, "preview").await;
    assert!(!plan.applied);
    let mut want: BTreeSet<String> = DEMO_PORTS
        .iter()
        .map(|(s, _)| format!("{s}/container"))
        .collect();
    for s in WEB {
        want.insert(format!("{s}/http/{}", stack.ports[s]));
    }
    let databases = ["postgres/postgres", "mariadb/mysql", "redis/redis"];
    let all = keys(&plan, |_| true);
    assert_eq!(
        all,
        want.iter()
            .cloned()
            .chain(databases.iter().map(|k| (*k).to_owned()))
            .collect::<BTreeSet<_>>(),
        "proposals (the web services' HTTP checks come from their compose \
         healthchecks, ComposeService::healthcheck): {:#?}",
        plan.checks
    );
    let http = plan
        .checks
        .iter()
        .find(|c| c.key.starts_with("gitea/http/"))
        .unwrap();
    let CheckSpec::Http(h) = &http.spec else {
        panic!("{http:?}")
    };
    assert_eq!(
        h.url,
        format!("{}", stack.health_url("gitea")),
        "the healthcheck's URL"
    );
    let pw = keys(&plan, |c| c.needs_password);
    assert_eq!(
        pw,
        BTreeSet::from(["mariadb/mysql".into(), "postgres/postgres".into()])
    );
    assert!(
        keys(&plan, |c| c.selected).is_disjoint(&pw),
        "no password given: not selected by default"
    );
    let CheckSpec::Postgres(p) = &plan
        .checks
        .iter()
        .find(|c| c.key == "postgres/postgres")
        .unwrap()
        .spec
    else {
        panic!()
    };
    assert_eq!(
        p.url,
        format!(
            "postgres://woodpecker@127.0.0.1:{}/woodpecker",
            stack.ports["postgres"]
        ),
        "user and database from the environment, no password"
    );
    assert!(
        checks(&admin).await.is_empty(),
        "a preview creates no check"
    );
    let services: Vec<serde_json::Value> = admin.json("/api/v1/services").await;
    assert!(services.is_empty(), "a preview creates no service");

    // Applied without checks first: services, no checks, not monitored.
    let mut apply = base.clone();
    apply["apply"] = json!(true);
    apply["checks"] = json!([]);
    let plan: ImportPlan = ok_json(compose(&admin, apply.clone()).await, "no checks").await;
    assert!(plan.applied && plan.checks.iter().all(|c| !c.selected));
    assert!(
        checks(&admin).await.is_empty(),
        "unticked checks are not created"
    );
    poll(
        Duration::from_secs(30),
        "nine unknown services",
        async || {
            let b = board(&viewer).await;
            (b.services.len() == 9 && b.overall == Overall::Unmonitored)
                .then_some(())
                .ok_or(format!("{:?} {:?}", b.overall, b.counts))
        },
    )
    .await;

    // Applied with the proposals, the demo's way: databases left out.
    apply["checks"] = json!(want.iter().collect::<Vec<_>>());
    let plan: ImportPlan = ok_json(compose(&admin, apply.clone()).await, "apply").await;
    assert_eq!(keys(&plan, |c| c.selected), want);
    let created = checks(&admin).await;
    assert_eq!(created.len(), want.len(), "{created:#?}");
    let kinds: BTreeSet<&str> = created.iter().map(|c| c.spec.kind()).collect();
    assert_eq!(kinds, BTreeSet::from(["container", "http"]));
    assert!(created.iter().all(|c| c.service.is_some() && c.enabled));
    assert_eq!(
        audit(&admin, "check.create").await.len(),
        want.len(),
        "one audit entry per check"
    );

    // Operational because the checks say so (first probes within an interval).
    poll(
        Duration::from_secs(240),
        "every service operational",
        async || {
            let b = board(&viewer).await;
            let off: Vec<String> = b
                .services
                .iter()
                .filter(|s| s.health != ServiceHealth::Operational)
                .map(|s| format!("{}: {:?} {:?}", s.name, s.health, s.problems))
                .collect();
            (off.is_empty() && b.overall == Overall::Operational && b.services.len() == 9)
                .then_some(())
                .ok_or(format!("{:?}: {}", b.overall, off.join("; ")))
        },
    )
    .await;

    // A re-import with the default selection adds nothing.
    let mut again = base.clone();
    again["apply"] = json!(true);
    let plan: ImportPlan = ok_json(compose(&admin, again).await, "re-import").await;
    assert!(
        plan.checks
            .iter()
            .filter(|c| want.contains(&c.key))
            .all(|c| c.exists && !c.selected),
        "{:#?}",
        plan.checks
    );
    assert_eq!(
        keys(&plan, |c| c.selected),
        BTreeSet::from(["redis/redis".to_owned()]),
        "only the one left out before is new"
    );
    let after = checks(&admin).await;
    assert_eq!(after.len(), want.len() + 1, "no duplicates");
    // The Redis stand-in is not Redis: that check goes away again.
    let redis = after.iter().find(|c| c.spec.kind() == "redis").unwrap();
    assert_eq!(
        admin
            .delete(&format!("/api/v1/checks/{}", redis.id))
            .await
            .status(),
        204
    );

    // npm (critical) stops: the board turns red with nothing added.
    stack
        .docker()
        .stop_container(
            &stack.container("npm"),
            Some(StopContainerOptionsBuilder::new().t(1).build()),
        )
        .await
        .expect("stopping npm");
    poll(Duration::from_secs(300), "an outage", async || {
        let b = board(&viewer).await;
        let npm = b
            .services
            .iter()
            .find(|s| s.name == "npm")
            .map(|s| s.health);
        (matches!(b.overall, Overall::Outage | Overall::Degraded)
            && npm == Some(ServiceHealth::Down))
        .then_some(b.overall)
        .ok_or(format!("{:?}, npm {npm:?}", b.overall))
    })
    .await;
    assert_eq!(
        board(&viewer).await.overall,
        Overall::Outage,
        "npm is critical"
    );
    drop(stack);
    server.stop().await;
    release(engine).await;
}

const SMALL: &str = r#"name: shop
services:
  web:
    image: nginx:1.27
    ports: ["127.0.0.1:WEB:80"]
  db:
    image: postgres:16
    ports: ["127.0.0.1:DB:5432"]
    environment:
      POSTGRES_USER: shop
      POSTGRES_PASSWORD: from-the-compose-file
"#;

fn small() -> (String, u16, u16) {
    let (web, db) = (free_port(), free_port());
    let text = SMALL
        .replace("WEB", &web.to_string())
        .replace("DB", &db.to_string());
    (text, web, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_apply_passwords_reimport_and_roles() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let operator = server.user(Role::Operator).await;
    let viewer = server.user(Role::Viewer).await;
    let (text, web, _) = small();
    let body = |extra: serde_json::Value| {
        let mut b = json!({"content": text});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };

    for api in [&viewer, &operator] {
        let res = compose(api, body(json!({"apply": true}))).await;
        assert_eq!(res.status(), 403, "admins only");
    }

    let http_key = format!("web/http/{web}");
    let pw = json!({"db/postgres": "pg-Secret-7731"});
    let plan: ImportPlan = ok_json(
        compose(&admin, body(json!({"check_passwords": pw}))).await,
        "preview",
    )
    .await;
    assert_eq!(
        keys(&plan, |c| c.selected),
        BTreeSet::from([
            "db/container".into(),
            "db/postgres".into(),
            "web/container".into(),
            http_key.clone()
        ]),
        "a password given selects its check"
    );
    assert!(checks(&admin).await.is_empty(), "a preview creates nothing");
    assert!(
        !serde_json::to_string(&plan)
            .unwrap()
            .contains("from-the-compose-file"),
        "the compose environment's password is never used"
    );

    // Bad keys name their field; nothing is written.
    let msg = expect_error(
        compose(&admin, body(json!({"apply": true, "checks": ["db/nope"]}))).await,
        400,
    )
    .await;
    assert!(msg.starts_with("checks:"), "{msg}");
    let msg = expect_error(
        compose(
            &admin,
            body(json!({"apply": true, "check_passwords": {"web/container": "x"}})),
        )
        .await,
        400,
    )
    .await;
    assert!(msg.starts_with("check_passwords.web/container:"), "{msg}");
    let services: Vec<serde_json::Value> = admin.json("/api/v1/services").await;
    assert!(services.is_empty(), "a refused import writes nothing");

    // Applied with the HTTP check unticked and the password given.
    let plan: ImportPlan = ok_json(
        compose(
            &admin,
            body(json!({"apply": true, "check_passwords": pw,
                        "checks": ["db/container", "db/postgres", "web/container"]})),
        )
        .await,
        "apply",
    )
    .await;
    assert!(plan.applied);
    let created = checks(&admin).await;
    let names: BTreeSet<(String, &str)> = created
        .iter()
        .map(|c| (c.service.clone().unwrap(), c.spec.kind()))
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            ("db".into(), "container"),
            ("db".into(), "postgres"),
            ("web".into(), "container")
        ]),
        "the unticked HTTP check is not created"
    );
    let pg = created
        .iter()
        .find(|c| c.spec.kind() == "postgres")
        .unwrap();
    assert!(pg.has_password);
    let stored: Option<String> = sqlx::query_scalar("SELECT secret FROM checks WHERE id = $1")
        .bind(pg.id)
        .fetch_one(&server.pool)
        .await
        .unwrap();
    let stored = stored.expect("a stored password");
    assert!(
        !stored.contains("pg-Secret-7731"),
        "sealed, not plain: {stored}"
    );
    let entries = audit(&admin, "check.create").await;
    assert_eq!(entries.len(), 3);
    assert!(
        entries
            .iter()
            .all(|e| !e.params.to_string().contains("pg-Secret-7731")),
        "no password in the audit log"
    );
    assert_eq!(audit(&admin, "inventory.compose.apply").await.len(), 1);

    // Re-imported with the default rule: only the HTTP check is new.
    let plan: ImportPlan =
        ok_json(compose(&admin, body(json!({"apply": true}))).await, "again").await;
    assert_eq!(
        keys(&plan, |c| c.selected),
        BTreeSet::from([http_key.clone()])
    );
    assert_eq!(
        keys(&plan, |c| c.exists),
        BTreeSet::from([
            "db/container".into(),
            "db/postgres".into(),
            "web/container".into()
        ])
    );
    assert_eq!(checks(&admin).await.len(), 4);
    let plan: ImportPlan =
        ok_json(compose(&admin, body(json!({"apply": true}))).await, "third").await;
    assert!(keys(&plan, |c| c.selected).is_empty());
    assert_eq!(checks(&admin).await.len(), 4, "no duplicates");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_the_same_checks_and_reads_passwords_from_a_file() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let (text, web, _) = small();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("compose.yaml");
    std::fs::write(&file, &text).unwrap();
    let secrets = dir.path().join("passwords");
    std::fs::write(&secrets, "# check passwords\ndb/postgres=cli-Secret-42\n").unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(opsdeck_e2e::util::opsdeck_bin())
            .args(args)
            .env("DATABASE_URL", opsdeck_e2e::pg::url(&server.database))
            .env("OPSDECK_SECRET_KEY", SECRET_KEY)
            .env("OPSDECK_LOG", "warn")
            .output()
            .expect("running opsdeck")
    };
    let f = file.to_str().unwrap();
    let dry = run(&["import", "compose", f, "--dry-run"]);
    let out = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(
        out.contains("db/postgres") && out.contains("skipped: needs a password"),
        "{out}"
    );
    assert!(checks(&admin).await.is_empty(), "a dry run creates nothing");

    let http_key = format!("web/http/{web}");
    let done = run(&[
        "import",
        "compose",
        f,
        "--skip-check",
        &http_key,
        "--check-passwords-file",
        secrets.to_str().unwrap(),
    ]);
    let out = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let created = checks(&admin).await;
    let kinds: BTreeSet<(String, &str)> = created
        .iter()
        .map(|c| (c.service.clone().unwrap(), c.spec.kind()))
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            ("db".into(), "container"),
            ("db".into(), "postgres"),
            ("web".into(), "container")
        ]),
        "{out}"
    );
    assert!(
        created
            .iter()
            .find(|c| c.spec.kind() == "postgres")
            .unwrap()
            .has_password
    );
    let stored: Vec<Option<String>> = sqlx::query_scalar("SELECT secret FROM checks")
        .fetch_all(&server.pool)
        .await
        .unwrap();
    assert!(stored
        .iter()
        .flatten()
        .all(|s| !s.contains("cli-Secret-42")));

    let none = run(&["import", "compose", f, "--no-checks"]);
    assert!(none.status.success());
    assert_eq!(checks(&admin).await.len(), 3, "--no-checks adds nothing");
    server.stop().await;
}

/// A service and an HTTP check on a target that answers (run once).
async fn service_with_check(admin: &Api) -> (i64, opsdeck_e2e::targets::Target) {
    let svc: opsdeck_wire::Service = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": "gitea", "tier": "application"}),
            )
            .await,
        "service",
    )
    .await;
    let t = opsdeck_e2e::targets::Target::start(opsdeck_e2e::targets::Behaviour::Ok("ok".into()));
    (svc.id, t)
}

async fn add_and_run_check(admin: &Api, service_id: i64, url: &str) {
    let c: Check = ok_json(
        admin
            .post(
                "/api/v1/checks",
                &json!({"service_id": service_id, "name": "health", "interval_s": 86400,
                        "timeout_ms": 2000, "fail_after": 1, "recover_after": 1,
                        "spec": {"kind": "http", "url": url}}),
            )
            .await,
        "check",
    )
    .await;
    let res = admin
        .post(&format!("/api/v1/checks/{}/run", c.id), &json!({}))
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_and_the_public_page_say_not_monitored_until_a_check_settles() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let public = Api::new(&server.base);
    assert_eq!(
        board(&admin).await.overall,
        Overall::Unmonitored,
        "no services"
    );
    let (id, target) = service_with_check(&admin).await;
    let res = admin
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/services/{id}/public"),
            &json!({"public": true}),
        )
        .await;
    assert_eq!(res.status(), 200);
    poll(Duration::from_secs(10), "one unknown service", async || {
        let b = board(&admin).await;
        (b.services.len() == 1 && b.overall == Overall::Unmonitored)
            .then_some(())
            .ok_or(format!("{:?}", b.overall))
    })
    .await;
    let page = public.get("/status").await.text().await.unwrap();
    assert!(
        page.contains("Not monitored yet") && !page.contains("All systems operational"),
        "{page}"
    );

    add_and_run_check(&admin, id, &format!("{}healthz", target.url())).await;
    poll(Duration::from_secs(10), "operational", async || {
        let b = board(&admin).await;
        (b.overall == Overall::Operational)
            .then_some(())
            .ok_or(format!("{:?}", b.overall))
    })
    .await;
    let page = public.get("/status").await.text().await.unwrap();
    assert!(page.contains("All systems operational"), "{page}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_banner_says_not_monitored_yet_with_the_way_to_add_checks() {
    let spa = opsdeck_e2e::server::spa();
    if spa.is_err() {
        return;
    }
    let server = TestServer::start().await;
    server.create_user("alice", Role::Admin).await;
    let admin = server.login("alice").await;
    let (id, target) = service_with_check(&admin).await;
    let Ok(b) = opsdeck_e2e::browser::Browser::start().await else {
        return;
    };
    b.sign_in(
        &server.url("/login"),
        "alice",
        opsdeck_e2e::server::PASSWORD,
    )
    .await;
    b.wait_for("[data-testid=dashboard-banner][data-overall=unmonitored]")
        .await;
    b.wait_for_contains("[data-testid=dashboard-banner]", "Not monitored yet")
        .await;
    b.wait_for("[data-testid=banner-add-checks] a[href='/checks']")
        .await;
    let banner = b
        .execute("return document.querySelector('[data-testid=dashboard-banner]').textContent;")
        .await;
    assert!(!banner.contains("operational"), "{banner}");

    // A check settles: the banner follows live, and the link goes.
    add_and_run_check(&admin, id, &format!("{}healthz", target.url())).await;
    b.wait_for("[data-testid=dashboard-banner][data-overall=operational]")
        .await;
    b.wait_for_contains("[data-testid=dashboard-banner]", "All systems operational")
        .await;
    assert!(!b.exists("[data-testid=banner-add-checks]").await);
    b.close().await;
    server.stop().await;
}
