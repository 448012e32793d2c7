//! Compose projects loaded as `docker compose` loads them, through the API
//! and the CLI: the corpus's three-file project (an include, an override
//! file, `extends`, two profiles and an `.env`) imports as one stack, the
//! API and `opsdeck import compose` give the same plan, errors name the
//! file and line, tiers are guessed from the image's repository name only.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use opsdeck_e2e::server::TestServer;
use opsdeck_e2e::util::{expect_error, ok_json};
use opsdeck_wire::{ChangeKind, ImportPlan, Role};
use serde_json::json;

fn stack_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/compose/stack")
}

/// Every file of a corpus case as `{path, content}` uploads.
fn uploads(dir: &Path, rel: &str, out: &mut Vec<serde_json::Value>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir.join(rel))
        .expect("corpus case")
        .map(|e| e.expect("entry"))
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if e.path().is_dir() {
            uploads(dir, &path, out);
        } else if !matches!(path.as_str(), "case.json" | "expected.json") {
            let content = std::fs::read_to_string(e.path()).expect("reading");
            out.push(json!({"path": path, "content": content}));
        }
    }
}

fn names(plan: &ImportPlan) -> Vec<(String, ChangeKind, Vec<String>)> {
    let mut out: Vec<_> = plan
        .changes
        .iter()
        .map(|c| (c.service.clone(), c.kind, c.guessed.clone()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_file_project_imports_as_one_stack_same_as_the_cli() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let mut files = Vec::new();
    uploads(&stack_dir(), "", &mut files);
    let body = json!({"files": files, "profiles": ["gpu"], "directory": "stack"});
    let plan: ImportPlan = ok_json(
        admin.post("/api/v1/inventory/compose", &body).await,
        "previewing the stack",
    )
    .await;
    assert_eq!(plan.project.as_deref(), Some("stack"));
    assert_eq!(plan.project_source.as_deref(), Some("COMPOSE_PROJECT_NAME"));
    assert_eq!(
        plan.files,
        vec![
            "compose.yaml",
            "monitoring/compose.yaml",
            "compose.override.yaml"
        ]
    );
    assert_eq!(plan.inactive.len(), 1);
    assert_eq!(plan.inactive[0].name, "pgadmin");
    assert_eq!(plan.inactive[0].profiles, vec!["debug"]);
    let got = names(&plan);
    let services: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        services,
        vec![
            "app",
            "cache",
            "db",
            "node-exporter",
            "postgres-exporter",
            "prometheus",
            "proxy",
            "worker",
            "worker-gpu"
        ]
    );
    assert!(got
        .iter()
        .all(|(_, k, g)| *k == ChangeKind::Add && g == &["tier"]));
    let field = |svc: &str, f: &str| {
        plan.changes
            .iter()
            .find(|c| c.service == svc)
            .and_then(|c| c.fields.iter().find(|x| x.field == f))
            .map(|x| x.new.clone())
            .unwrap_or_default()
    };
    assert_eq!(field("proxy", "tier"), "critical");
    assert_eq!(field("db", "tier"), "critical");
    assert_eq!(field("cache", "tier"), "support");
    assert_eq!(field("app", "tier"), "application");
    assert_eq!(field("worker-gpu", "image"), "ghcr.io/acme/app:1.4.0-cuda");
    assert_eq!(field("worker-gpu", "requires"), "app, cache, db");
    assert!(!serde_json::to_string(&plan)
        .unwrap()
        .contains("not-in-the-model"));

    // The CLI, reading the same directory from disk, gives the same plan.
    let out = Command::new(opsdeck_e2e::util::opsdeck_bin())
        .args(["import", "compose", "--project-directory"])
        .arg(stack_dir())
        .args(["--profile", "gpu", "--dry-run", "--json"])
        .env("DATABASE_URL", opsdeck_e2e::pg::url(&server.database))
        .env("OPSDECK_LOG", "warn")
        .env_remove("COMPOSE_PROJECT_NAME")
        .env_remove("COMPOSE_PROFILES")
        .env_remove("COMPOSE_FILE")
        .stdin(Stdio::null())
        .output()
        .expect("running opsdeck");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: ImportPlan = serde_json::from_slice(&out.stdout).expect("the CLI's JSON plan");
    assert_eq!(cli.project, plan.project);
    assert_eq!(cli.project_source, plan.project_source);
    assert_eq!(cli.files, plan.files);
    assert_eq!(cli.inactive, plan.inactive);
    assert_eq!(cli.changes, plan.changes);

    // Apply through the API: the active services only.
    let body = json!({"files": files, "profiles": ["gpu"], "directory": "stack", "apply": true});
    let applied: ImportPlan = ok_json(
        admin.post("/api/v1/inventory/compose", &body).await,
        "applying the stack",
    )
    .await;
    assert!(applied.applied);
    let list: serde_json::Value = ok_json(admin.get("/api/v1/services").await, "services").await;
    let text = list.to_string();
    assert!(
        text.contains("worker-gpu") && !text.contains("pgadmin"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_errors_name_file_and_line() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let body = json!({
        "files": [
            {"path": "compose.yaml", "content": "name: s\nservices:\n  web:\n    image: nginx\n"},
            {"path": "prod.yml", "content": "services:\n  web:\n    labels: {a: b}\n    depends_on:\n      - db\n"}
        ],
        "compose_files": ["compose.yaml", "prod.yml"]
    });
    let msg = expect_error(admin.post("/api/v1/inventory/compose", &body).await, 400).await;
    assert!(
        msg.contains("prod.yml: line 5: services.web.depends_on: unknown service \"db\""),
        "{msg}"
    );
    // A required variable left unset in the uploaded .env.
    let body = json!({
        "files": [
            {"path": "compose.yaml", "content": "name: s\nservices:\n  db:\n    image: postgres:16\n    environment:\n      POSTGRES_PASSWORD: ${PW:?set PW}\n"},
            {"path": ".env", "content": "OTHER=1\n"}
        ]
    });
    let msg = expect_error(admin.post("/api/v1/inventory/compose", &body).await, 400).await;
    assert!(
        msg.contains("compose.yaml: line 6:")
            && msg.contains("required variable PW is missing a value: set PW"),
        "{msg}"
    );
    // The server's own environment never takes part: HOME is unset for
    // the loader, so the default is used.
    let body = json!({
        "files": [{"path": "compose.yaml", "content": "name: s\nservices:\n  a:\n    image: \"x:${HOME:-none}\"\n"}]
    });
    let plan: ImportPlan = ok_json(
        admin.post("/api/v1/inventory/compose", &body).await,
        "interpolating",
    )
    .await;
    let image = plan.changes[0]
        .fields
        .iter()
        .find(|f| f.field == "image")
        .map(|f| f.new.clone());
    assert_eq!(image.as_deref(), Some("x:none"));
}
