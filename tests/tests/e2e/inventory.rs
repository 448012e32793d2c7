//! The service inventory through the API, without Docker: compose import
//! (preview, apply, re-import diffs that keep hand edits), refusals that
//! name line and field and leave nothing half-imported, manual edits and
//! cycle refusal, graph queries on the MosAIc graph, the YAML round trip,
//! live change events, audit entries, and `opsdeck import` on the CLI.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::stack::{mosaic_compose, MOSAIC};
use opsdeck_e2e::util::{expect_error, ok_json, sse_until};
use opsdeck_wire::{
    AuditPage, ChangeKind, GraphQueryResult, GraphView, ImportPlan, Role, RunState, Service,
    ServiceOverview, Tier,
};
use serde_json::json;

/// POST /api/v1/inventory/compose.
async fn compose(api: &Api, content: &str, project: &str, apply: bool) -> reqwest::Response {
    api.post(
        "/api/v1/inventory/compose",
        &json!({"content": content, "project": project, "apply": apply}),
    )
    .await
}

async fn import_mosaic(api: &Api) -> ImportPlan {
    ok_json(
        compose(api, &mosaic_compose(), "mosaic", true).await,
        "importing MosAIc",
    )
    .await
}

async fn services(api: &Api) -> BTreeMap<String, ServiceOverview> {
    let list: Vec<ServiceOverview> = api.json("/api/v1/services").await;
    list.into_iter()
        .map(|o| (o.service.name.clone(), o))
        .collect()
}

async fn service(api: &Api, name: &str) -> Service {
    services(api)
        .await
        .remove(name)
        .unwrap_or_else(|| panic!("no service {name}"))
        .service
}

async fn export(api: &Api) -> String {
    let res = api.get("/api/v1/inventory/export").await;
    assert_eq!(res.status(), 200);
    res.text().await.expect("export body")
}

fn change<'a>(plan: &'a ImportPlan, service: &str) -> &'a opsdeck_wire::PlanChange {
    plan.changes
        .iter()
        .find(|c| c.service == service)
        .unwrap_or_else(|| panic!("no change for {service} in {plan:#?}"))
}

fn field<'a>(c: &'a opsdeck_wire::PlanChange, name: &str) -> &'a opsdeck_wire::FieldChange {
    c.fields
        .iter()
        .find(|f| f.field == name)
        .unwrap_or_else(|| panic!("no change of {name} in {c:#?}"))
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Byte offset of the top-level `volumes:` line of a compose text (the end
/// of its `services:` mapping).
fn top_volumes(text: &str) -> usize {
    text.find("\nvolumes:\n").expect("a top-level volumes key") + 1
}

/// The compose text without its last service, portainer.
fn without_portainer(text: &str) -> String {
    let start = text.find("  portainer:\n").expect("portainer");
    let mut t = text.to_owned();
    t.replace_range(start..top_volumes(text), "");
    t
}

/// 1-based number of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in the text"))
        + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_import_previews_then_applies() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;

    let preview: ImportPlan = ok_json(
        compose(&admin, &mosaic_compose(), "mosaic", false).await,
        "preview",
    )
    .await;
    assert!(!preview.applied);
    assert_eq!(preview.project.as_deref(), Some("mosaic"));
    let names: BTreeSet<&str> = preview.changes.iter().map(|c| c.service.as_str()).collect();
    let expected: BTreeSet<&str> = MOSAIC.iter().map(|s| s.name).collect();
    assert_eq!(names, expected);
    assert!(
        preview.changes.iter().all(|c| c.kind == ChangeKind::Add),
        "{preview:#?}"
    );
    let gitea = change(&preview, "gitea");
    assert_eq!(field(gitea, "image").new, "gitea/gitea:1.21");
    assert_eq!(field(gitea, "requires").new, "mariadb, redis");
    assert_eq!(field(gitea, "compose_project").new, "mosaic");
    assert_eq!(field(gitea, "tier").new, "application");
    assert!(
        services(&admin).await.is_empty(),
        "a preview changes nothing"
    );

    let applied = import_mosaic(&admin).await;
    assert!(applied.applied);
    assert_eq!(applied.changes.len(), MOSAIC.len());
    let all = services(&admin).await;
    assert_eq!(all.len(), MOSAIC.len());
    for spec in MOSAIC {
        let s = &all[spec.name].service;
        let mut requires = strings(spec.requires);
        requires.sort();
        assert_eq!(s.requires, requires, "{}", spec.name);
        assert_eq!(s.description, spec.description);
        assert_eq!(s.compose_project.as_deref(), Some("mosaic"));
        assert_eq!(s.compose_service.as_deref(), Some(spec.name));
        assert_eq!(s.image.as_deref(), Some(spec.image));
        assert_eq!(s.source, "compose");
        assert_eq!(s.volumes.len(), 2, "{s:#?}");
        assert_eq!(s.ports.len(), 1, "{s:#?}");
        assert!(s.ports[0].starts_with("127.0.0.1:180"), "{s:#?}");
        assert_eq!(
            s.labels.get("com.mosaic.stack").map(String::as_str),
            Some("core")
        );
        assert!(
            !s.labels.keys().any(|k| k.starts_with("opsdeck.")),
            "opsdeck.* labels set fields, they are not kept as labels: {s:#?}"
        );
        // No engine is registered: nothing is known about containers.
        assert_eq!(all[spec.name].run_state, RunState::Unknown, "{}", spec.name);
        assert!(all[spec.name].containers.is_empty());
    }
    // Tiers: from opsdeck.tier labels, else guessed from the image.
    assert_eq!(all["npm"].service.tier, Tier::Critical);
    assert_eq!(all["postgres"].service.tier, Tier::Critical, "guessed");
    assert_eq!(all["redis"].service.tier, Tier::Support, "guessed");
    assert_eq!(all["gitea"].service.tier, Tier::Application);
    assert_eq!(
        all["gitea"].service.docs_url.as_deref(),
        Some("https://docs.gitea.com")
    );
    assert_eq!(
        all["redis"].service.supports,
        strings(&["gitea", "mcp"]),
        "supports is the inverse of requires"
    );
    assert_eq!(all["gitea"].service.supports, strings(&["woodpecker"]));

    // The same file again: nothing to do.
    let again: ImportPlan = ok_json(
        compose(&admin, &mosaic_compose(), "mosaic", true).await,
        "re-import",
    )
    .await;
    assert!(
        again
            .changes
            .iter()
            .all(|c| c.kind == ChangeKind::Unchanged),
        "{again:#?}"
    );

    // GET one service.
    let id = all["woodpecker"].service.id;
    let one: ServiceOverview = admin.json(&format!("/api/v1/services/{id}")).await;
    assert_eq!(one.service.requires, strings(&["gitea", "postgres"]));
    assert_eq!(admin.get("/api/v1/services/999999").await.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reimport_shows_the_diff_and_keeps_hand_edits() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    import_mosaic(&admin).await;
    let gitea = service(&admin, "gitea").await;
    let res = admin
        .patch(
            &format!("/api/v1/services/{}", gitea.id),
            &json!({"description": "Our forge (edited)", "image": "gitea/gitea:1.21-custom"}),
        )
        .await;
    let edited: Service = ok_json(res, "PATCH gitea").await;
    assert_eq!(
        edited.edited_fields,
        strings(&["description", "image"]),
        "{edited:#?}"
    );

    // The new file: portainer gone, uptime added, bookstack and gitea on
    // new images, mcp's description changed.
    let old = mosaic_compose();
    let mut new = without_portainer(&old);
    new.insert_str(
        top_volumes(&new),
        "  uptime:\n    image: louislam/uptime-kuma:1\n    depends_on: [npm]\n    labels:\n      opsdeck.tier: support\n",
    );
    let new = new
        .replace(
            "image: lscr.io/linuxserver/bookstack:23.12",
            "image: lscr.io/linuxserver/bookstack:24.05",
        )
        .replace("image: gitea/gitea:1.21", "image: gitea/gitea:1.22")
        .replace("MCP server for the assistants", "MCP server v2");
    assert_ne!(new, old);

    let plan: ImportPlan = ok_json(compose(&admin, &new, "mosaic", false).await, "preview").await;
    assert_eq!(change(&plan, "portainer").kind, ChangeKind::Remove);
    let uptime = change(&plan, "uptime");
    assert_eq!(uptime.kind, ChangeKind::Add);
    assert_eq!(field(uptime, "requires").new, "npm");
    let bookstack = change(&plan, "bookstack");
    assert_eq!(bookstack.kind, ChangeKind::Update);
    let image = field(bookstack, "image");
    assert_eq!(
        (image.old.as_str(), image.new.as_str()),
        (
            "lscr.io/linuxserver/bookstack:23.12",
            "lscr.io/linuxserver/bookstack:24.05"
        )
    );
    let mcp = change(&plan, "mcp");
    assert_eq!(field(mcp, "description").new, "MCP server v2");
    // gitea: the image and description were edited by hand: kept, reported.
    let g = change(&plan, "gitea");
    assert!(
        g.fields
            .iter()
            .all(|f| f.field != "image" && f.field != "description"),
        "{g:#?}"
    );
    let kept: BTreeSet<&str> = g.kept_manual.iter().map(String::as_str).collect();
    assert_eq!(kept, BTreeSet::from(["description", "image"]), "{g:#?}");
    for s in ["npm", "postgres", "mariadb", "redis", "woodpecker"] {
        assert_eq!(
            change(&plan, s).kind,
            ChangeKind::Unchanged,
            "{s}: {plan:#?}"
        );
    }
    assert!(
        services(&admin).await.contains_key("portainer"),
        "a preview changes nothing"
    );

    let applied: ImportPlan = ok_json(compose(&admin, &new, "mosaic", true).await, "apply").await;
    assert!(applied.applied);
    let all = services(&admin).await;
    assert!(!all.contains_key("portainer"));
    assert_eq!(all["uptime"].service.requires, strings(&["npm"]));
    assert_eq!(all["npm"].service.supports, strings(&["uptime"]));
    assert_eq!(
        all["bookstack"].service.image.as_deref(),
        Some("lscr.io/linuxserver/bookstack:24.05")
    );
    assert_eq!(all["mcp"].service.description, "MCP server v2");
    let g = &all["gitea"].service;
    assert_eq!(g.image.as_deref(), Some("gitea/gitea:1.21-custom"));
    assert_eq!(g.description, "Our forge (edited)");
    assert_eq!(g.requires, strings(&["mariadb", "redis"]));

    // A hand-made dependency survives compose re-imports too.
    let res = admin
        .patch(
            &format!("/api/v1/services/{}", all["bookstack"].service.id),
            &json!({"requires": ["mariadb", "redis"]}),
        )
        .await;
    ok_json::<Service>(res, "PATCH bookstack requires").await;
    let plan: ImportPlan = ok_json(compose(&admin, &new, "mosaic", true).await, "again").await;
    assert_eq!(
        change(&plan, "bookstack").kind,
        ChangeKind::Unchanged,
        "{plan:#?}"
    );
    assert_eq!(
        service(&admin, "bookstack").await.requires,
        strings(&["mariadb", "redis"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_imports_name_line_and_field_and_change_nothing() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    import_mosaic(&admin).await;
    let baseline = export(&admin).await;
    let good = mosaic_compose();

    let unchanged = async |what: &str| {
        assert_eq!(
            export(&admin).await,
            baseline,
            "the inventory changed after a refused import ({what})"
        );
    };

    // Broken YAML: a tab-indented key.
    let line = line_of(&good, "image: redis:7");
    let broken = good.replace("    image: redis:7\n", "    image: redis:7\n\tports: [\n");
    let msg = expect_error(compose(&admin, &broken, "mosaic", true).await, 400).await;
    let at = line + 1;
    assert!(
        msg.contains(&format!("line {at}")),
        "the message names line {at}: {msg}"
    );
    unchanged("broken YAML").await;

    // Unknown dependency.
    let typo = good.replace(
        "depends_on: [mariadb, redis]",
        "depends_on: [mariadb, rediss]",
    );
    let line = line_of(&typo, "rediss");
    let msg = expect_error(compose(&admin, &typo, "mosaic", true).await, 400).await;
    assert!(
        msg.contains(&format!("line {line}"))
            && msg.contains("services.gitea.depends_on")
            && msg.contains("\"rediss\""),
        "names line {line}, field and service: {msg}"
    );
    unchanged("unknown dependency").await;

    // A service defined twice.
    let mut dup = good.clone();
    dup.insert_str(top_volumes(&good), "  redis:\n    image: redis:6\n");
    let line = line_of(&dup, "image: redis:6") - 1;
    let msg = expect_error(compose(&admin, &dup, "mosaic", true).await, 400).await;
    assert!(
        msg.contains("duplicate key \"redis\"") && msg.contains(&format!("line {line}")),
        "names the duplicate and line {line}: {msg}"
    );
    unchanged("duplicate service").await;

    // A bad opsdeck.tier label names the field.
    let bad_tier = good.replacen("opsdeck.tier: support", "opsdeck.tier: urgent", 1);
    let msg = expect_error(compose(&admin, &bad_tier, "mosaic", true).await, 400).await;
    assert!(
        msg.contains("services.mcp.labels.opsdeck.tier") && msg.contains("urgent"),
        "{msg}"
    );
    unchanged("bad tier").await;

    // A cycle between new services, next to valid new services.
    let mut cyclic = good.clone();
    cyclic.insert_str(
        top_volumes(&good),
        "  alpha:\n    image: a\n    depends_on: [beta]\n  beta:\n    image: b\n    depends_on: [alpha]\n  gamma:\n    image: c\n",
    );
    let msg = expect_error(compose(&admin, &cyclic, "mosaic", true).await, 400).await;
    assert!(msg.contains("alpha → beta → alpha"), "{msg}");
    unchanged("cycle").await;

    // Failing half-way through the write (an unknown engine is found when
    // the first service is written, after portainer's removal): rolled back.
    let res = admin
        .post(
            "/api/v1/inventory/compose",
            &json!({"content": without_portainer(&good), "project": "mosaic", "engine": "nope", "apply": true}),
        )
        .await;
    let msg = expect_error(res, 400).await;
    assert!(msg.contains("engine") && msg.contains("\"nope\""), "{msg}");
    unchanged("unknown engine").await;

    // No project name anywhere.
    let nameless = good.replacen("name: mosaic\n", "", 1);
    let res = admin
        .post(
            "/api/v1/inventory/compose",
            &json!({"content": nameless, "apply": true}),
        )
        .await;
    let msg = expect_error(res, 400).await;
    assert!(msg.contains("project"), "{msg}");

    // Inventory YAML with a dangling `requires`.
    let doc = baseline.replacen("    - mariadb\n", "    - mariadbb\n", 1);
    assert_ne!(doc, baseline);
    let res = admin
        .post(
            "/api/v1/inventory/import",
            &json!({"content": doc, "apply": true}),
        )
        .await;
    let msg = expect_error(res, 400).await;
    assert!(msg.contains("mariadbb") && msg.contains("line"), "{msg}");
    unchanged("inventory YAML").await;

    // Nothing refused was audited as applied.
    let page: AuditPage = admin
        .json("/api/v1/audit?action=inventory.compose.apply&limit=200")
        .await;
    assert_eq!(page.entries.len(), 1, "only the first import: {page:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_by_hand_and_cycles_refused() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let create = async |body: serde_json::Value| -> Service {
        ok_json(admin.post("/api/v1/services", &body).await, "create").await
    };
    let a = create(json!({
        "name": "a", "description": "Alpha", "tier": "critical", "owner_team": "ops",
        "docs_url": "https://docs.example/a", "container_name": "alpha-1"
    }))
    .await;
    assert_eq!(a.tier, Tier::Critical);
    assert_eq!(a.source, "manual");
    assert_eq!(a.owner_team.as_deref(), Some("ops"));
    let b = create(json!({"name": "b", "requires": ["a"]})).await;
    let c = create(json!({"name": "c", "requires": ["b"]})).await;
    assert_eq!(c.requires, strings(&["b"]));
    assert_eq!(b.tier, Tier::Application, "default tier");

    let one: ServiceOverview = admin.json(&format!("/api/v1/services/{}", b.id)).await;
    assert_eq!(one.service.supports, strings(&["c"]));
    assert_eq!(one.run_state, RunState::Unmapped, "no container mapping");
    let one: ServiceOverview = admin.json(&format!("/api/v1/services/{}", a.id)).await;
    assert_eq!(one.service.supports, strings(&["b"]));

    // a → c → b → a would close a cycle: refused, naming it.
    let path = format!("/api/v1/services/{}", a.id);
    let msg = expect_error(admin.patch(&path, &json!({"requires": ["c"]})).await, 400).await;
    assert!(msg.contains("a → c → b → a"), "names the cycle: {msg}");
    let msg = expect_error(admin.patch(&path, &json!({"requires": ["a"]})).await, 400).await;
    assert!(msg.contains("itself"), "{msg}");
    let msg = expect_error(admin.patch(&path, &json!({"requires": ["zz"]})).await, 400).await;
    assert!(msg.contains("\"zz\""), "{msg}");
    assert!(service(&admin, "a").await.requires.is_empty(), "unchanged");

    // Duplicates, bad names, bad fields.
    let res = admin.post("/api/v1/services", &json!({"name": "a"})).await;
    assert_eq!(res.status(), 409);
    let res = admin
        .post("/api/v1/services", &json!({"name": "Bad Name"}))
        .await;
    let msg = expect_error(res, 400).await;
    assert!(msg.starts_with("name:"), "{msg}");
    let res = admin
        .patch(&path, &json!({"docs_url": "ftp://files.example/a"}))
        .await;
    let msg = expect_error(res, 400).await;
    assert!(msg.contains("docs_url"), "{msg}");
    let res = admin
        .post("/api/v1/services", &json!({"name": "d", "engine": "nope"}))
        .await;
    let msg = expect_error(res, 400).await;
    assert!(msg.contains("\"nope\""), "{msg}");

    // Edits are marked.
    let res = admin
        .patch(
            &path,
            &json!({"description": "Alpha service", "tier": "support"}),
        )
        .await;
    let edited: Service = ok_json(res, "PATCH a").await;
    assert_eq!(edited.description, "Alpha service");
    assert_eq!(edited.tier, Tier::Support);
    assert_eq!(edited.edited_fields, strings(&["description", "tier"]));
    assert_eq!(edited.owner_team.as_deref(), Some("ops"), "untouched");

    // Rename keeps the edges.
    let res = admin
        .patch(
            &format!("/api/v1/services/{}", b.id),
            &json!({"name": "bee"}),
        )
        .await;
    ok_json::<Service>(res, "rename b").await;
    assert_eq!(service(&admin, "c").await.requires, strings(&["bee"]));

    // Delete: the service and its edges go.
    assert_eq!(
        admin
            .delete(&format!("/api/v1/services/{}", c.id))
            .await
            .status(),
        204
    );
    assert_eq!(
        admin
            .get(&format!("/api/v1/services/{}", c.id))
            .await
            .status(),
        404
    );
    assert!(service(&admin, "bee").await.supports.is_empty());
    assert_eq!(
        admin
            .delete(&format!("/api/v1/services/{}", c.id))
            .await
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_and_queries_on_the_mosaic_graph() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let viewer = server.user(Role::Viewer).await;
    import_mosaic(&admin).await;

    let graph: GraphView = viewer.json("/api/v1/graph").await;
    let names: BTreeSet<&str> = graph.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, MOSAIC.iter().map(|s| s.name).collect());
    let edges: BTreeSet<(String, String)> = graph
        .edges
        .iter()
        .map(|e| (e.from.clone(), e.to.clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = MOSAIC
        .iter()
        .flat_map(|s| {
            s.requires
                .iter()
                .map(|r| (s.name.to_owned(), r.to_string()))
        })
        .collect();
    assert_eq!(edges, expected);
    assert!(graph.edges.iter().all(|e| e.source == "compose"));
    let layer: BTreeMap<&str, u32> = graph
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.layer))
        .collect();
    for (from, to) in &edges {
        assert!(
            layer[from.as_str()] > layer[to.as_str()],
            "{from} ({}) requires {to} ({}): layers must point down",
            layer[from.as_str()],
            layer[to.as_str()]
        );
    }
    for s in MOSAIC {
        if s.requires.is_empty() {
            assert_eq!(layer[s.name], 0, "{} requires nothing", s.name);
        }
    }
    assert_eq!(layer["woodpecker"], 2);
    for n in &graph.nodes {
        assert!(
            n.x > 0.0 && n.x < graph.width && n.y > 0.0 && n.y < graph.height,
            "{n:?} lies in the drawing {}×{}",
            graph.width,
            graph.height
        );
    }

    let query = async |q: &str| -> Vec<String> {
        let r: GraphQueryResult =
            ok_json(viewer.get(&format!("/api/v1/graph/query?{q}")).await, q).await;
        r.services
    };
    assert_eq!(
        query("kind=impact&services=redis").await,
        strings(&["gitea", "mcp", "woodpecker"])
    );
    assert_eq!(
        query("kind=impact&services=mariadb").await,
        strings(&["bookstack", "gitea", "woodpecker"])
    );
    assert_eq!(
        query("kind=impact&services=postgres,mcp").await,
        strings(&["woodpecker"])
    );
    assert!(query("kind=impact&services=woodpecker").await.is_empty());

    let start = query("kind=start_order").await;
    assert_eq!(start.len(), MOSAIC.len(), "{start:?}");
    let pos = |name: &str| start.iter().position(|s| s == name).expect(name);
    for (from, to) in &edges {
        assert!(pos(to) < pos(from), "{to} starts before {from}: {start:?}");
    }
    assert!(pos("mariadb") < pos("gitea") && pos("redis") < pos("gitea"));
    assert!(pos("gitea") < pos("woodpecker") && pos("postgres") < pos("woodpecker"));
    let mut stop = query("kind=stop_order").await;
    stop.reverse();
    assert_eq!(stop, start, "stop order is the start order reversed");
    assert_eq!(
        query("kind=start_order&services=woodpecker,mariadb,redis").await,
        strings(&["mariadb", "redis", "woodpecker"])
    );
    // No container is failing (no engine): no root cause to report.
    assert!(query("kind=root_cause&services=woodpecker")
        .await
        .is_empty());

    for bad in [
        "",
        "kind=impact",
        "kind=impact&services=nope",
        "kind=bogus&services=redis",
        "kind=start_order&services=redis,nope",
    ] {
        let res = viewer.get(&format!("/api/v1/graph/query?{bad}")).await;
        let msg = expect_error(res, 400).await;
        assert!(!msg.is_empty(), "{bad}");
    }
    let res = viewer
        .get("/api/v1/graph/query?kind=impact&services=nope")
        .await;
    assert!(expect_error(res, 400).await.contains("nope"));
}

/// Removes the `- name: <name>` entry (and its fields) from an exported
/// inventory's `services:` list.
fn remove_yaml_entry(text: &str, name: &str) -> String {
    let mut out = Vec::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.trim_start().starts_with("- name: ") {
            skipping = line.trim_start() == format!("- name: {name}");
        } else if !line.starts_with(' ') {
            skipping = false;
        }
        if !skipping {
            out.push(line);
        }
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yaml_export_import_round_trip() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    import_mosaic(&admin).await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "edge", "endpoint": "unix:///tmp/opsdeck-no-such-engine.sock"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let res = admin
        .post(
            "/api/v1/services",
            &json!({"name": "backup", "description": "Nightly backups: restic → S3\nsecond line",
                    "tier": "support", "engine": "edge", "requires": ["postgres", "mariadb"],
                    "labels": {"schedule": "0 3 * * *", "yes": "no"}}),
        )
        .await;
    ok_json::<Service>(res, "create backup").await;
    let gitea = service(&admin, "gitea").await;
    let res = admin
        .patch(
            &format!("/api/v1/services/{}", gitea.id),
            &json!({"owner_team": "platform"}),
        )
        .await;
    ok_json::<Service>(res, "PATCH gitea").await;

    let first = export(&admin).await;
    assert!(first.starts_with("version: 1\n"), "{first}");
    assert!(first.contains("name: edge"), "{first}");
    let plan: ImportPlan = ok_json(
        admin
            .post(
                "/api/v1/inventory/import",
                &json!({"content": first, "apply": true}),
            )
            .await,
        "import the export",
    )
    .await;
    assert!(plan.applied);
    assert!(
        plan.changes.iter().all(|c| c.fields.is_empty()
            && c.kind != ChangeKind::Add
            && c.kind != ChangeKind::Remove),
        "importing the export changes no field: {plan:#?}"
    );
    let second = export(&admin).await;
    assert_eq!(second, first, "export → import → export is byte-identical");

    // A modified document applies exactly.
    let modified = remove_yaml_entry(&first, "portainer").replacen(
        "description: Redis cache and queues",
        "description: Redis for sessions only",
        1,
    );
    assert!(!modified.contains("portainer"), "{modified}");
    assert!(modified.contains("Redis for sessions only"), "{modified}");
    let plan: ImportPlan = ok_json(
        admin
            .post(
                "/api/v1/inventory/import",
                &json!({"content": modified, "apply": false}),
            )
            .await,
        "preview the modified document",
    )
    .await;
    assert_eq!(change(&plan, "portainer").kind, ChangeKind::Remove);
    let redis = change(&plan, "redis");
    assert_eq!(redis.kind, ChangeKind::Update);
    assert_eq!(field(redis, "description").new, "Redis for sessions only");
    assert_eq!(export(&admin).await, first, "a preview changes nothing");
    let plan: ImportPlan = ok_json(
        admin
            .post(
                "/api/v1/inventory/import",
                &json!({"content": modified, "apply": true}),
            )
            .await,
        "apply the modified document",
    )
    .await;
    assert!(plan.applied);
    let all = services(&admin).await;
    assert!(!all.contains_key("portainer"));
    assert_eq!(all["redis"].service.description, "Redis for sessions only");
    assert_eq!(all.len(), MOSAIC.len(), "8 of MosAIc + backup");
    assert_eq!(
        export(&admin).await,
        modified,
        "the inventory is the document"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_announced_on_the_event_stream() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let viewer = server.user(Role::Viewer).await;
    let res = viewer.get("/api/v1/inventory/events").await;
    assert_eq!(res.status(), 200);
    let ct = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let writer = tokio::spawn(async move {
        // Give the stream a moment to subscribe, then change something.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let res = admin
            .post("/api/v1/services", &json!({"name": "solo"}))
            .await;
        assert_eq!(res.status(), 201);
    });
    let (event, data) = sse_until(res, Duration::from_secs(15), "inventory events", |e, _| {
        e == "changed"
    })
    .await;
    assert_eq!(event, "changed");
    assert!(data.parse::<u64>().is_ok(), "a counter: {data:?}");
    writer.await.expect("writer task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_inventory_change_is_audited() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    ok_json::<ImportPlan>(
        compose(&admin, &mosaic_compose(), "mosaic", false).await,
        "preview",
    )
    .await;
    import_mosaic(&admin).await;
    let engine: opsdeck_wire::Engine = ok_json(
        admin
            .post(
                "/api/v1/engines",
                &json!({"name": "edge", "endpoint": "tcp://10.255.255.1:2375"}),
            )
            .await,
        "create engine",
    )
    .await;
    let s: Service = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": "solo", "engine": "edge"}),
            )
            .await,
        "create",
    )
    .await;
    ok_json::<Service>(
        admin
            .patch(
                &format!("/api/v1/services/{}", s.id),
                &json!({"description": "x"}),
            )
            .await,
        "update",
    )
    .await;
    assert_eq!(
        admin
            .delete(&format!("/api/v1/services/{}", s.id))
            .await
            .status(),
        204
    );
    let doc = export(&admin).await;
    for apply in [false, true] {
        ok_json::<ImportPlan>(
            admin
                .post(
                    "/api/v1/inventory/import",
                    &json!({"content": doc, "apply": apply}),
                )
                .await,
            "yaml import",
        )
        .await;
    }
    assert_eq!(
        admin
            .delete(&format!("/api/v1/engines/{}", engine.id))
            .await
            .status(),
        204
    );

    let page: AuditPage = admin.json("/api/v1/audit?limit=200").await;
    let actions: BTreeSet<&str> = page.entries.iter().map(|e| e.action.as_str()).collect();
    for a in [
        "inventory.compose.preview",
        "inventory.compose.apply",
        "engine.create",
        "service.create",
        "service.update",
        "service.delete",
        "inventory.yaml.preview",
        "inventory.yaml.apply",
        "engine.delete",
    ] {
        assert!(actions.contains(a), "no audit entry {a}: {actions:?}");
    }
    assert!(
        !actions.contains("request.unaudited"),
        "a mutating request left no entry: {:#?}",
        page.entries
            .iter()
            .filter(|e| e.action == "request.unaudited")
            .collect::<Vec<_>>()
    );
    let apply = page
        .entries
        .iter()
        .find(|e| e.action == "inventory.compose.apply")
        .expect("compose apply entry");
    assert_eq!(apply.target.as_deref(), Some("project:mosaic"));
    assert_eq!(apply.params["changes"]["added"], 9, "{:?}", apply.params);
    let create = page
        .entries
        .iter()
        .find(|e| e.action == "service.create")
        .expect("service.create");
    assert_eq!(create.target.as_deref(), Some("service:solo"));
}

fn opsdeck(server: &TestServer, args: &[&str]) -> std::process::Output {
    let mut child = Command::new(opsdeck_e2e::util::opsdeck_bin())
        .args(args)
        .env("DATABASE_URL", opsdeck_e2e::pg::url(&server.database))
        .env("OPSDECK_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running opsdeck");
    drop(child.stdin.take());
    child.wait_with_output().expect("opsdeck output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_imports_compose_files_and_exports() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("docker-compose.yml");
    std::fs::File::create(&file)
        .and_then(|mut f| f.write_all(mosaic_compose().as_bytes()))
        .expect("writing the compose file");
    let path = file.to_str().expect("utf-8 path");

    let out = opsdeck(&server, &["import", "compose", path, "--dry-run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("+ gitea"), "{stdout}");
    assert!(
        stdout.contains("requires: \"\" -> \"mariadb, redis\""),
        "{stdout}"
    );
    assert!(stdout.contains("dry run: nothing changed"), "{stdout}");
    assert!(
        services(&admin).await.is_empty(),
        "--dry-run changes nothing"
    );

    let out = opsdeck(&server, &["import", "compose", path, "--project", "core"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.trim_end().ends_with("applied"), "{stdout}");
    let all = services(&admin).await;
    assert_eq!(all.len(), MOSAIC.len());
    assert_eq!(
        all["gitea"].service.compose_project.as_deref(),
        Some("core")
    );
    assert_eq!(
        all["woodpecker"].service.requires,
        strings(&["gitea", "postgres"])
    );
    let actors: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor, action FROM audit_log WHERE action LIKE 'inventory.compose.%' ORDER BY seq",
    )
    .fetch_all(&server.pool)
    .await
    .expect("audit rows");
    assert_eq!(
        actors,
        vec![
            ("cli".to_owned(), "inventory.compose.preview".to_owned()),
            ("cli".to_owned(), "inventory.compose.apply".to_owned())
        ]
    );

    // The same file again: unchanged.
    let out = opsdeck(&server, &["import", "compose", path, "--project", "core"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("= gitea"),
        "{stdout}"
    );

    // `opsdeck export` prints what the API exports; `import inventory` of it
    // is a no-op, and a broken file is refused naming the line.
    let out = opsdeck(&server, &["export"]);
    assert!(out.status.success());
    let exported = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(exported, export(&admin).await);
    let inv = dir.path().join("inventory.yaml");
    std::fs::write(&inv, &exported).expect("writing the inventory");
    let out = opsdeck(
        &server,
        &["import", "inventory", inv.to_str().unwrap(), "--dry-run"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("dry run"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("\n+ ") && !stdout.contains("\n- "),
        "{stdout}"
    );

    let broken = dir.path().join("broken.yml");
    std::fs::write(
        &broken,
        "services:\n  web:\n    image: nginx\n    ports: [\n",
    )
    .expect("writing");
    let out = opsdeck(
        &server,
        &[
            "import",
            "compose",
            broken.to_str().unwrap(),
            "--project",
            "x",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("line "), "{stderr}");
    assert_eq!(services(&admin).await.len(), MOSAIC.len());
}

/// `[key]=value` entries of a `declare -A name=( … )` array in a bash script
/// (values quoted with "" may hold spaces).
fn bash_assoc(script: &str, name: &str) -> BTreeMap<String, String> {
    let start = script
        .find(&format!("declare -A {name}=("))
        .unwrap_or_else(|| panic!("no array {name}"));
    let body = &script[start..];
    let body = &body[body.find('(').unwrap() + 1..body.find("\n)").expect("end of the array")];
    let mut out = BTreeMap::new();
    let mut rest = body.trim();
    while let Some(open) = rest.find('[') {
        let close = rest.find("]=").expect("]=");
        let key = rest[open + 1..close].to_owned();
        rest = &rest[close + 2..];
        let (value, tail) = if let Some(q) = rest.strip_prefix('"') {
            let end = q.find('"').expect("closing quote");
            (&q[..end], &q[end + 1..])
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        out.insert(key, value.to_owned());
        rest = tail.trim_start();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_compose_file_matches_the_handbook_and_the_demo_script() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let text = std::fs::read_to_string(format!("{root}/docker/demo/mosaic.compose.yml"))
        .expect("docker/demo/mosaic.compose.yml");
    let script = std::fs::read_to_string(format!("{root}/scripts/demo.sh")).expect("demo.sh");
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let res = admin
        .post(
            "/api/v1/inventory/compose",
            &json!({"content": text, "apply": true}),
        )
        .await;
    let plan: ImportPlan = ok_json(res, "importing the demo file").await;
    assert_eq!(
        plan.project.as_deref(),
        Some("mosaic"),
        "the file names its project"
    );
    let all = services(&admin).await;
    let tiers: BTreeMap<&str, Tier> = all
        .values()
        .map(|o| (o.service.name.as_str(), o.service.tier))
        .collect();
    use Tier::*;
    let handbook = BTreeMap::from([
        ("npm", Critical),
        ("postgres", Critical),
        ("mariadb", Critical),
        ("gitea", Application),
        ("bookstack", Application),
        ("woodpecker", Application),
        ("redis", Support),
        ("mcp", Support),
        ("portainer", Support),
    ]);
    assert_eq!(tiers, handbook, "tiers as on the handbook's dashboard");
    let ports = bash_assoc(&script, "port");
    let depends = bash_assoc(&script, "depends");
    for spec in MOSAIC {
        let s = &all[spec.name].service;
        let mut requires = strings(spec.requires);
        requires.sort();
        assert_eq!(
            s.requires, requires,
            "{}: dependencies as in the handbook",
            s.name
        );
        let mut scripted: Vec<String> = depends
            .get(spec.name)
            .map(|d| d.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        scripted.sort();
        assert_eq!(scripted, requires, "{}: demo.sh's depends table", s.name);
        assert!(!s.description.is_empty(), "{} has a description", s.name);
        let port = &ports[spec.name];
        assert_eq!(
            s.ports,
            vec![format!("127.0.0.1:{port}:{port}")],
            "{}: the port demo.sh gives its stand-in",
            s.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compose_preview_refuses_an_unknown_engine_like_the_apply_does() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    for apply in [true, false] {
        let res = admin
            .post(
                "/api/v1/inventory/compose",
                &json!({"content": mosaic_compose(), "project": "mosaic", "engine": "nope",
                        "apply": apply}),
            )
            .await;
        let msg = expect_error(res, 400).await;
        assert!(msg.contains("\"nope\""), "apply={apply}: {msg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_project_does_not_take_over_the_services_of_another() {
    // Staging and production often run the same compose file: importing it
    // as a second project must not silently re-point production's services.
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    import_mosaic(&admin).await;
    let before = export(&admin).await;
    let res = compose(&admin, &mosaic_compose(), "mosaic-staging", true).await;
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    assert!(
        status == 400 || status == 409,
        "importing project mosaic-staging over mosaic's service names: {status} {text}"
    );
    assert!(text.contains("gitea") && text.contains("mosaic"), "{text}");
    assert_eq!(export(&admin).await, before);
}
