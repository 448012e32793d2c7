//! Importing a discovered compose project from its own files: the
//! containers carry the labels `docker compose` writes (working directory,
//! `-f` files, env file); the panel reads those files through the private
//! engine (a never-started helper with read-only bind mounts), follows
//! their `include`, and imports what the files say: the override's labels,
//! `.env` interpolation, the included service, the profile of a running
//! service made active, and a profiled service that does not run listed as
//! inactive, with the checks it proposes created in the same step. No
//! helper container is left behind.

use std::collections::HashMap;
use std::path::Path;

use bollard::query_parameters::ListContainersOptionsBuilder;
use opsdeck_e2e::flows::containers::wait_engine;
use opsdeck_e2e::server::TestServer;
use opsdeck_e2e::stack::{Stack, SHOP};
use opsdeck_e2e::util::{engine, expect_error, ok_json, poll};
use opsdeck_wire::{EngineState, ImportPlan, Role, ServiceOverview};
use serde_json::json;

const COMPOSE: &str = "\
include:
  - extra/worker.yaml
services:
  shop:
    image: ghcr.io/mosaic/shop:${SHOP_TAG:-2}
    depends_on: [shopdb]
  shopdb:
    image: postgres:16
    profiles: [db]
  adminer:
    image: adminer:4
    profiles: [tools]
";

const OVERRIDE: &str = "\
services:
  shop:
    labels:
      opsdeck.owner: shop-team
";

const WORKER: &str = "\
services:
  worker:
    image: ghcr.io/mosaic/worker:1
";

fn write_project(dir: &Path) {
    std::fs::create_dir_all(dir.join("extra")).unwrap();
    std::fs::write(dir.join("compose.yaml"), COMPOSE).unwrap();
    std::fs::write(dir.join("compose.override.yaml"), OVERRIDE).unwrap();
    std::fs::write(dir.join("extra/worker.yaml"), WORKER).unwrap();
    std::fs::write(dir.join(".env"), "SHOP_TAG=3\n").unwrap();
}

fn labels(dir: &Path) -> HashMap<String, String> {
    let d = dir.display();
    HashMap::from([
        (
            "com.docker.compose.project.working_dir".to_owned(),
            d.to_string(),
        ),
        (
            "com.docker.compose.project.config_files".to_owned(),
            format!("{d}/compose.yaml,{d}/compose.override.yaml"),
        ),
        (
            "com.docker.compose.project.environment_file".to_owned(),
            format!("{d}/.env"),
        ),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovered_project_imports_from_its_own_files() {
    let Some(engine) = engine().await else { return };
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let operator = server.user(Role::Operator).await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "main", "endpoint": engine.host()}),
        )
        .await;
    assert_eq!(res.status(), 201);
    wait_engine(&admin, "main", EngineState::Connected).await;

    let dir = tempfile::Builder::new()
        .prefix("opsdeck-discovered-")
        .tempdir()
        .unwrap();
    write_project(dir.path());
    let stack = Stack::up_labelled(&engine, "shop", SHOP, &labels(dir.path()))
        .await
        .expect("bringing up the shop stack");
    // A second copy without the file labels (started by hand, say).
    let bare = Stack::up(&engine, "bare", SHOP)
        .await
        .expect("bringing up a stack without file labels");
    poll(
        std::time::Duration::from_secs(60),
        "both projects discovered",
        async || {
            let found: Vec<serde_json::Value> = admin.json("/api/v1/inventory/discovered").await;
            let names: Vec<&str> = found.iter().filter_map(|p| p["project"].as_str()).collect();
            if names.contains(&stack.project.as_str()) && names.contains(&bare.project.as_str()) {
                Ok(())
            } else {
                Err(format!("{names:?}"))
            }
        },
    )
    .await;

    let request = |apply: bool| json!({"engine": "main", "project": stack.project, "apply": apply, "from_files": true});
    // Operators cannot read a host's files through the panel.
    let res = operator
        .post("/api/v1/inventory/discovered", &request(false))
        .await;
    assert_eq!(res.status(), 403);

    let plan: ImportPlan = ok_json(
        admin
            .post("/api/v1/inventory/discovered", &request(false))
            .await,
        "previewing from files",
    )
    .await;
    assert!(!plan.applied);
    for f in ["compose.yaml", "compose.override.yaml", "extra/worker.yaml"] {
        assert!(plan.files.iter().any(|x| x == f), "{f} not read: {plan:#?}");
    }
    let added: Vec<&str> = plan.changes.iter().map(|c| c.service.as_str()).collect();
    assert_eq!(added, ["shop", "shopdb", "worker"], "{plan:#?}");
    assert_eq!(plan.inactive.len(), 1, "{plan:#?}");
    assert_eq!(plan.inactive[0].name, "adminer");
    assert_eq!(plan.inactive[0].profiles, ["tools"]);
    // Monitored at import, as a compose import is.
    let proposed: Vec<&str> = plan
        .checks
        .iter()
        .filter(|c| c.selected)
        .map(|c| c.key.as_str())
        .collect();
    assert_eq!(
        proposed,
        ["shop/container", "shopdb/container", "worker/container"],
        "{plan:#?}"
    );

    let plan: ImportPlan = ok_json(
        admin
            .post("/api/v1/inventory/discovered", &request(true))
            .await,
        "importing from files",
    )
    .await;
    assert!(plan.applied);
    let services: Vec<ServiceOverview> = admin.json("/api/v1/services").await;
    let shop = services
        .iter()
        .find(|o| o.service.name == "shop")
        .expect("shop imported");
    // `.env` interpolated, the override's label applied, the project mapped.
    assert_eq!(shop.service.image.as_deref(), Some("ghcr.io/mosaic/shop:3"));
    assert_eq!(shop.service.owner_team.as_deref(), Some("shop-team"));
    assert_eq!(
        shop.service.compose_project.as_deref(),
        Some(stack.project.as_str())
    );
    assert!(services.iter().any(|o| o.service.name == "worker"));
    let checks: Vec<serde_json::Value> = admin.json("/api/v1/checks").await;
    let kinds: Vec<(String, String)> = checks
        .iter()
        .map(|c| {
            (
                c["service"].as_str().unwrap_or_default().to_owned(),
                c["spec"]["kind"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for svc in ["shop", "shopdb", "worker"] {
        assert!(
            kinds.contains(&(svc.to_owned(), "container".to_owned())),
            "no container check for {svc}: {kinds:?}"
        );
    }
    assert!(!services.iter().any(|o| o.service.name == "adminer"));

    // Containers without the file labels: a clear refusal.
    let msg = expect_error(
        admin
            .post(
                "/api/v1/inventory/discovered",
                &json!({"engine": "main", "project": bare.project, "from_files": true}),
            )
            .await,
        400,
    )
    .await;
    assert!(msg.contains("do not name their compose files"), "{msg}");

    // A `-f` file gone from the host: the reason, with the path.
    std::fs::remove_file(dir.path().join("compose.override.yaml")).unwrap();
    let msg = expect_error(
        admin
            .post("/api/v1/inventory/discovered", &request(false))
            .await,
        400,
    )
    .await;
    assert!(
        msg.contains("compose.override.yaml") && msg.contains("no such file"),
        "{msg}"
    );

    // Every helper is gone.
    let helpers = stack
        .docker()
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&HashMap::from([(
                    "label",
                    vec!["opsdeck.hostfiles-helper"],
                )]))
                .build(),
        ))
        .await
        .unwrap();
    assert!(helpers.is_empty(), "helpers left: {helpers:#?}");
}
