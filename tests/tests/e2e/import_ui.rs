//! The compose import page in headless Chromium against the real server.
//!
//! Files are uploaded the way a user does it: the harness sets the
//! `<input type=file multiple>` to files on disk (WebDriver "send keys" to
//! a file input, one path per line), so the browser reads them as it reads
//! a user's choice, with base names only.
//!
//! - [`import_page_one_file`]: a pasted file refused with its line; one
//!   uploaded file (others dropped on the page: an override file placed
//!   after it, a second `compose.yaml` kept apart until its path is edited,
//!   both removed again) previewed, applied, and on the services page.
//! - [`import_page_project_files_profiles_checks`]: the whole flow of issue
//!   28: two compose files and an `.env` uploaded together, the project
//!   directory typed, a profile ticked (the plan follows), the proposed
//!   checks (one unticked, a database password typed), Apply, and the
//!   services and their checks there. It needs the compose loading model
//!   (several files, `.env`, profiles, the directory as the project name)
//!   and the proposed checks on the server: against a server without them
//!   it fails at the first preview, with the server's answer in the message.
//!
//! Screenshots land in `<workspace>/target/screenshots/` (`import.png` at
//! desktop width, `import-phone.png` at phone width, `import-checks.png`).

use std::path::Path;
use std::time::{Duration, Instant};

use opsdeck_e2e::browser::{screenshots, Browser, WAIT};
use opsdeck_e2e::server::{Api, TestServer, PASSWORD};
use opsdeck_wire::{Check, ImportPlan, Role, ServiceOverview};

/// The SPA must be built (`make frontend`); outside CI a missing build skips.
fn spa_built() -> bool {
    opsdeck_e2e::server::spa().is_ok()
}

/// Writes `files` into `dir`; returns their paths, one per line, as a file
/// input takes several.
fn write_files(dir: &Path, files: &[(&str, &str)]) -> String {
    files
        .iter()
        .map(|(name, text)| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
            p.display().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Signs in as the admin and opens the compose tab of `/inventory`.
async fn open_import(b: &Browser, server: &TestServer) {
    b.sign_in(&server.url("/login"), "alice", PASSWORD).await;
    b.wait_for("[data-testid=nav-inventory]")
        .await
        .click()
        .await
        .expect("nav to the import page");
    b.wait_for_path("/inventory").await;
    b.wait_for("[data-testid=tab-compose]").await;
    b.wait_for("[data-testid=compose-files]").await;
}

async fn click(b: &Browser, css: &str) {
    let el = b.wait_for(css).await;
    // Centred, so the sticky top bar never covers it.
    b.execute(&format!(
        "document.querySelector({css:?}).scrollIntoView({{block: 'center'}}); return 'ok';"
    ))
    .await;
    el.click()
        .await
        .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
}

/// A DOM property (`value` of a select is a property, not an attribute).
async fn prop(b: &Browser, css: &str, name: &str) -> String {
    b.wait_for(css)
        .await
        .prop(name)
        .await
        .unwrap_or_else(|e| panic!("property {name} of {css}: {e}"))
        .unwrap_or_default()
}

async fn attr(b: &Browser, css: &str, name: &str) -> String {
    b.wait_for(css)
        .await
        .attr(name)
        .await
        .unwrap_or_else(|e| panic!("attribute {name} of {css}: {e}"))
        .unwrap_or_default()
}

/// Waits until the plan is on screen and no request is running; a refusal
/// from the server fails the test with the server's message.
async fn wait_plan(b: &Browser, step: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        if b.exists("[data-testid=import-error]").await {
            let text = b
                .wait_for("[data-testid=import-error]")
                .await
                .text()
                .await
                .unwrap_or_default();
            panic!("{step}: the server refused the import: {text}");
        }
        if b.exists("[data-testid=plan]").await && !b.exists(".compose-plan[aria-busy=true]").await
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{step}: no plan within {} s",
            WAIT.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Drops a file named `name` on the drop zone, as a drag from the desktop
/// does (a `drop` event whose `DataTransfer` holds the file).
async fn drop_file(b: &Browser, name: &str, text: &str) {
    let script = "const [name, text] = arguments;
        const dt = new DataTransfer();
        dt.items.add(new File([text], name, {type: 'application/yaml'}));
        const zone = document.querySelector('[data-testid=compose-drop]');
        zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
        zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
        return 'dropped';";
    if let Err(e) = b
        .client
        .execute(
            script,
            vec![serde_json::json!(name), serde_json::json!(text)],
        )
        .await
    {
        panic!("dropping {name}: {e}");
    }
}

/// Waits until nothing matches `css` (an element that goes away).
async fn wait_gone(b: &Browser, css: &str) {
    let deadline = Instant::now() + WAIT;
    while b.exists(css).await {
        assert!(
            Instant::now() < deadline,
            "{css} still there after {} s",
            WAIT.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn services(api: &Api) -> Vec<String> {
    let list: Vec<ServiceOverview> = api.json("/api/v1/services").await;
    list.into_iter().map(|o| o.service.name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_page_one_file() {
    if !spa_built() {
        return;
    }
    let server = TestServer::start().await;
    server.create_user("alice", Role::Admin).await;
    let admin = server.login("alice").await;
    let Ok(b) = Browser::start().await else {
        return;
    };
    open_import(&b, &server).await;

    // Nothing given: said so, nothing sent.
    click(&b, "[data-testid=import-preview]").await;
    b.wait_for_contains("[data-testid=import-error]", "Add the project's files")
        .await;

    // A pasted file with a duplicate key: refused with its line.
    b.wait_for("[data-testid=compose-text]")
        .await
        .send_keys("services:\n  web:\n    image: nginx\n  web:\n    image: caddy\n")
        .await
        .expect("pasting a file");
    click(&b, "[data-testid=import-preview]").await;
    let refused = b
        .wait_for_contains("[data-testid=import-error]", "duplicate")
        .await;
    let text = refused.text().await.expect("the error's text");
    assert!(text.contains("line 4"), "the error names the line: {text}");

    // One uploaded file replaces the paste (the one-file path).
    let dir = tempfile::tempdir().expect("temp dir");
    let paths = write_files(
        dir.path(),
        &[(
            "compose.yaml",
            "name: shop1\nservices:\n  web:\n    image: nginx:1.27\n    depends_on: [db]\n  db:\n    image: postgres:16\n",
        )],
    );
    b.wait_for("[data-testid=compose-files]")
        .await
        .send_keys(&paths)
        .await
        .expect("choosing the file");
    b.wait_for("[data-testid=file-row-0][data-path='compose.yaml']")
        .await;
    b.wait_for_text("[data-testid=file-order-0]", "-f 1").await;
    assert_eq!(
        prop(&b, "[data-testid=file-role-0]", "value").await,
        "compose"
    );
    b.wait_for("[data-testid=paste-hidden]").await;

    // Dropping a file adds it (an override file goes after its base
    // file); ✕ removes it again.
    drop_file(&b, "compose.override.yaml", "services: {}").await;
    b.wait_for("[data-testid=file-row-1][data-path='compose.override.yaml']")
        .await;
    b.wait_for_text("[data-testid=file-order-1]", "-f 2").await;
    click(&b, "[data-testid=file-remove-1]").await;
    wait_gone(&b, "[data-testid=file-row-1]").await;

    // A second file named compose.yaml (an included one from a folder):
    // kept, as "other", its path marked until it gets its folder.
    drop_file(&b, "compose.yaml", "services: {}").await;
    b.wait_for("[data-testid=file-row-1].path-taken").await;
    assert_eq!(
        prop(&b, "[data-testid=file-role-1]", "value").await,
        "other"
    );
    click(&b, "[data-testid=import-preview]").await;
    b.wait_for_contains(
        "[data-testid=import-error]",
        "Two files have the path compose.yaml",
    )
    .await;
    b.wait_for("[data-testid=file-path-1]")
        .await
        .send_keys("x")
        .await
        .expect("editing the path");
    wait_gone(&b, ".path-taken").await;
    click(&b, "[data-testid=file-remove-1]").await;
    wait_gone(&b, "[data-testid=file-row-1]").await;

    click(&b, "[data-testid=import-preview]").await;
    wait_plan(&b, "preview of one file").await;
    b.wait_for_contains("[data-testid=plan-head]", "project shop1")
        .await;
    b.wait_for_contains("[data-testid=plan-row-web]", "nginx:1.27")
        .await;
    b.wait_for_contains("[data-testid=plan-row-db]", "postgres:16")
        .await;
    b.wait_for("[data-testid=proposed-checks]").await;
    assert!(
        services(&admin).await.is_empty(),
        "a preview changes nothing"
    );
    b.set_window_size(1280, 1300).await;
    b.wait_for("[data-testid=plan]").await;
    b.screenshot(&screenshots().join("import.png")).await;
    b.set_window_size(390, 844).await;
    b.wait_for("[data-testid=plan]").await;
    b.execute("document.querySelector('[data-testid=plan]').scrollIntoView(); return 'ok';")
        .await;
    b.screenshot(&screenshots().join("import-phone.png")).await;
    b.set_window_size(1280, 900).await;

    click(&b, "[data-testid=import-apply]").await;
    b.wait_for("[data-testid=import-done]").await;
    b.wait_for("[data-testid=to-dashboard]").await;
    let mut names = services(&admin).await;
    names.sort();
    assert_eq!(names, ["db", "web"]);

    click(&b, "[data-testid=nav-services]").await;
    b.wait_for_path("/services").await;
    b.wait_for("[data-testid=service-row-web]").await;
    b.wait_for("[data-testid=service-row-db]").await;

    b.close().await;
    server.stop().await;
}

const MAIN: &str = "\
services:
  web:
    image: nginx:${NGINX_TAG:-1.27}
    ports: [\"8080:80\"]
    depends_on: [db]
  db:
    image: postgres:${PG_TAG}
    ports: [\"127.0.0.1:15432:5432\"]
    environment:
      POSTGRES_USER: shop
      POSTGRES_PASSWORD: from-the-compose-file
  gpu-worker:
    image: example/worker-cuda
    profiles: [gpu]
    depends_on: [db]
  seed:
    image: example/seed
    profiles: [tools]
";

const MONITORING: &str = "\
services:
  db-exporter:
    image: prometheuscommunity/postgres-exporter
    depends_on: [db]
";

const ENV: &str = "PG_TAG=16\n";

const DB_PASSWORD: &str = "typed-in-the-browser";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_page_project_files_profiles_checks() {
    if !spa_built() {
        return;
    }
    let server = TestServer::start().await;
    server.create_user("alice", Role::Admin).await;
    let admin = server.login("alice").await;
    let Ok(b) = Browser::start().await else {
        return;
    };
    open_import(&b, &server).await;

    // Three files at once: the base file first, the second compose file
    // after it, the .env recognised by its name.
    let dir = tempfile::tempdir().expect("temp dir");
    let paths = write_files(
        dir.path(),
        &[
            (".env", ENV),
            ("compose.monitoring.yaml", MONITORING),
            ("compose.yaml", MAIN),
        ],
    );
    b.wait_for("[data-testid=compose-files]")
        .await
        .send_keys(&paths)
        .await
        .expect("choosing three files");
    b.wait_for("[data-testid=file-row-0][data-path='compose.yaml']")
        .await;
    b.wait_for("[data-testid=file-row-1][data-path='compose.monitoring.yaml']")
        .await;
    b.wait_for("[data-testid=file-row-2][data-path='.env']")
        .await;
    for (i, role, order) in [
        (0, "compose", "-f 1"),
        (1, "compose", "-f 2"),
        (2, "env", "env 1"),
    ] {
        assert_eq!(
            prop(&b, &format!("[data-testid=file-role-{i}]"), "value").await,
            role,
            "role of file {i}"
        );
        b.wait_for_text(&format!("[data-testid=file-order-{i}]"), order)
            .await;
    }
    // Reordering works both ways (and is undone).
    click(&b, "[data-testid=file-down-0]").await;
    b.wait_for("[data-testid=file-row-0][data-path='compose.monitoring.yaml']")
        .await;
    b.wait_for_text("[data-testid=file-order-1]", "-f 2").await;
    click(&b, "[data-testid=file-up-1]").await;
    b.wait_for("[data-testid=file-row-0][data-path='compose.yaml']")
        .await;

    // No name: in the files: the directory names the project.
    b.wait_for("[data-testid=compose-directory]")
        .await
        .send_keys("shop")
        .await
        .expect("typing the directory");

    // --- From here on the server's loading model is needed (several files
    // merged, .env interpolation, profiles, the directory's name).
    click(&b, "[data-testid=import-preview]").await;
    wait_plan(&b, "preview of two compose files and an .env").await;
    b.wait_for_contains("[data-testid=plan-head]", "project shop")
        .await;
    b.wait_for_contains("[data-testid=project-default]", "shop")
        .await;
    b.wait_for_contains("[data-testid=plan-files]", "compose.monitoring.yaml")
        .await;
    b.wait_for_contains("[data-testid=plan-row-db]", "postgres:16")
        .await;
    b.wait_for("[data-testid=plan-row-web]").await;
    b.wait_for("[data-testid=plan-row-db-exporter]").await;
    b.wait_for_contains("[data-testid=inactive-gpu-worker]", "profile gpu")
        .await;
    b.wait_for_contains("[data-testid=inactive-seed]", "profile tools")
        .await;
    assert!(!b.exists("[data-testid=plan-row-gpu-worker]").await);

    // Ticking a profile previews again: gpu-worker joins, seed stays out.
    click(&b, "[data-testid=profile-gpu]").await;
    b.wait_for("[data-testid=plan-row-gpu-worker]").await;
    wait_gone(&b, "[data-testid=inactive-gpu-worker]").await;
    wait_plan(&b, "preview with profile gpu").await;
    b.wait_for("[data-testid=inactive-seed]").await;
    b.wait_for("[data-testid=profile-tools]").await;

    // --- Proposed checks (needs the server's proposals): one per service
    // at least, grouped; the database asks for a password.
    for s in ["web", "db", "db-exporter", "gpu-worker"] {
        b.wait_for(&format!("[data-testid=checks-of-{s}]")).await;
        b.wait_for(&format!(
            "[data-testid='check-{s}/container'][data-selected=true]"
        ))
        .await;
    }
    let pw = "[data-testid='check-password-db/postgres']";
    assert_eq!(attr(&b, pw, "type").await, "password");
    assert_eq!(attr(&b, pw, "autocomplete").await, "off");
    b.wait_for(pw)
        .await
        .send_keys(DB_PASSWORD)
        .await
        .expect("typing the database password");
    b.wait_for("[data-testid='check-db/postgres'][data-selected=true]")
        .await;
    click(&b, "[data-testid='check-tick-db-exporter/container']").await;
    b.wait_for("[data-testid='check-db-exporter/container'][data-selected=false]")
        .await;
    b.screenshot(&screenshots().join("import-checks.png")).await;

    click(&b, "[data-testid=import-apply]").await;
    b.wait_for("[data-testid=import-done]").await;
    b.wait_for_contains("[data-testid='check-db/postgres']", "created")
        .await;
    b.wait_for_contains("[data-testid='check-db-exporter/container']", "not created")
        .await;
    let source = b.client.source().await.expect("the page's source");
    assert!(
        !source.contains(DB_PASSWORD),
        "the password is gone from the page after Apply"
    );

    // The inventory: the active services only; their checks exist.
    let mut names = services(&admin).await;
    names.sort();
    assert_eq!(names, ["db", "db-exporter", "gpu-worker", "web"]);
    let checks: Vec<Check> = admin.json("/api/v1/checks").await;
    let has = |service: &str, kind: &str| {
        checks
            .iter()
            .find(|c| c.service.as_deref() == Some(service) && c.spec.kind() == kind)
    };
    for s in ["web", "db", "gpu-worker"] {
        assert!(
            has(s, "container").is_some(),
            "a container check for {s}: {checks:?}"
        );
    }
    assert!(
        has("db-exporter", "container").is_none(),
        "unticked: not created"
    );
    let pg = has("db", "postgres").expect("the postgres check");
    assert!(pg.has_password, "the typed password is stored");

    // And in the UI: the services page lists them.
    click(&b, "[data-testid=nav-services]").await;
    b.wait_for_path("/services").await;
    for s in ["web", "db", "db-exporter", "gpu-worker"] {
        b.wait_for(&format!("[data-testid=service-row-{s}]")).await;
    }
    assert!(!b.exists("[data-testid=service-row-seed]").await);

    // The plan the page applied is the API's plan for the same request.
    let again: ImportPlan = opsdeck_e2e::util::ok_json(
        admin
            .post(
                "/api/v1/inventory/compose",
                &serde_json::json!({
                    "files": [
                        {"path": "compose.yaml", "content": MAIN},
                        {"path": "compose.monitoring.yaml", "content": MONITORING},
                        {"path": ".env", "content": ENV},
                    ],
                    "compose_files": ["compose.yaml", "compose.monitoring.yaml"],
                    "env_files": [".env"],
                    "profiles": ["gpu"],
                    "directory": "shop",
                }),
            )
            .await,
        "previewing the same project through the API",
    )
    .await;
    assert!(
        again
            .changes
            .iter()
            .all(|c| c.kind == opsdeck_wire::ChangeKind::Unchanged),
        "applied: nothing left to change: {:?}",
        again.changes
    );

    b.close().await;
    server.stop().await;
}
