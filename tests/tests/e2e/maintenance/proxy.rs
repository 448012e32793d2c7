//! Proxy mode against a real busybox httpd "proxy" on the private dockerd:
//! the served page swapped and restored byte for byte, a failed reload
//! rolled back, a server killed mid-enable, overlapping periods placing the
//! page once.

use super::*;

/// A busybox httpd standing in for the stack's proxy: PID 1 of a container
/// labelled as compose service `proxy` of `project`, serving `/www` on a
/// loopback port (host network: the private engine has no bridge), its
/// configuration in `/etc/httpd.conf`.
struct Proxy {
    engine: PrivateDockerd,
    docker: Docker,
    name: String,
    port: u16,
    http: reqwest::Client,
}

impl Proxy {
    async fn start(engine: &PrivateDockerd, project: &str) -> Proxy {
        let build = engine.clone();
        tokio::task::spawn_blocking(move || build.build_busybox_image(IMAGE))
            .await
            .expect("image build task")
            .expect("the busybox image");
        let docker = opsdeck::docker::connect(Some(&engine.host()))
            .await
            .expect("a client of the private engine");
        let port = free_port();
        let name = format!("{project}-proxy-1");
        let proxy = Proxy {
            engine: engine.clone(),
            docker,
            name: name.clone(),
            port,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("an HTTP client"),
        };
        let script = format!(
            "mkdir -p /www /etc && echo '<h1>MosAIc app</h1>' > /www/index.html \
             && echo '# app config' > /etc/httpd.conf \
             && exec httpd -f -p 127.0.0.1:{port} -h /www -c /etc/httpd.conf"
        );
        let labels = HashMap::from([
            ("com.docker.compose.project".to_owned(), project.to_owned()),
            ("com.docker.compose.service".to_owned(), "proxy".to_owned()),
            (
                "com.docker.compose.container-number".to_owned(),
                "1".to_owned(),
            ),
            ("com.docker.compose.oneoff".to_owned(), "False".to_owned()),
        ]);
        let body = ContainerCreateBody {
            image: Some(IMAGE.into()),
            cmd: Some(vec!["sh".into(), "-c".into(), script]),
            labels: Some(labels),
            host_config: Some(HostConfig {
                network_mode: Some("host".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        proxy
            .docker
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name(&name).build()),
                body,
            )
            .await
            .unwrap_or_else(|e| panic!("creating {name}: {e}"));
        proxy
            .docker
            .start_container(&name, None::<StartContainerOptions>)
            .await
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        poll(WAIT, "the proxy serves the app", async || {
            match proxy.get("/").await {
                (200, body) if body == APP_PAGE.as_bytes() => Ok(()),
                (status, body) => Err(format!("{status}: {}", String::from_utf8_lossy(&body))),
            }
        })
        .await;
        proxy
    }

    /// GET `path` from the proxy: status and body bytes (0 when unreachable).
    async fn get(&self, path: &str) -> (u16, Vec<u8>) {
        match self
            .http
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .send()
            .await
        {
            Ok(r) => {
                let status = r.status().as_u16();
                (
                    status,
                    r.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
                )
            }
            Err(e) => (0, e.to_string().into_bytes()),
        }
    }

    /// GET `/` as text, asserting 200.
    async fn page(&self) -> String {
        let (status, body) = self.get("/").await;
        let text = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(status, 200, "GET / from the proxy: {text}");
        text
    }

    /// Runs argv in the proxy container: exit code and stdout.
    async fn exec(&self, argv: &[&str]) -> (i64, String) {
        let created = self
            .docker
            .create_exec(
                &self.name,
                CreateExecOptions::<String> {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(argv.iter().map(|s| (*s).to_owned()).collect()),
                    ..Default::default()
                },
            )
            .await
            .unwrap_or_else(|e| panic!("exec {argv:?} in {}: {e}", self.name));
        let mut out = Vec::new();
        if let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&created.id, None::<StartExecOptions>)
            .await
            .expect("starting the exec")
        {
            while let Some(chunk) = output.next().await {
                if let LogOutput::StdOut { message } = chunk.expect("exec output") {
                    out.extend_from_slice(&message);
                }
            }
        }
        let code = self
            .docker
            .inspect_exec(&created.id)
            .await
            .expect("inspecting the exec")
            .exit_code
            .expect("an exit code");
        (code, String::from_utf8_lossy(&out).into_owned())
    }

    /// The file's content in the container, or `None` when it is absent.
    async fn file(&self, path: &str) -> Option<String> {
        let (code, out) = self.exec(&["cat", path]).await;
        (code == 0).then_some(out)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self
            .engine
            .cli()
            .args(["rm", "--force", &self.name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// A server with the private engine as `main`, a proxy container of a
/// unique compose project, and that project in the inventory: `edgeproxy`
/// (its proxy) and `ledger` (no container).
struct ProxyEnv {
    /// Kept for the test's length (the server stops when dropped).
    _server: TestServer,
    admin: Api,
    op: Api,
    viewer: Api,
    project: String,
    proxy: Proxy,
}

async fn proxy_env(engine: &PrivateDockerd, prefix: &str) -> ProxyEnv {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    let viewer = server.user(Role::Viewer).await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "main", "endpoint": engine.host()}),
        )
        .await;
    assert_eq!(res.status(), 201, "registering the engine");
    let project = unique_project(prefix);
    let proxy = Proxy::start(engine, &project).await;
    add_proxy_stack(&admin, &op, "main", &project, &proxy).await;
    ProxyEnv {
        _server: server,
        admin,
        op,
        viewer,
        project,
        proxy,
    }
}

/// Puts `project` in the inventory on `engine_name`: `edgeproxy` (the
/// proxy container's compose service) and `ledger` (no container); waits
/// until the inventory shows the proxy's running container.
async fn add_proxy_stack(admin: &Api, op: &Api, engine_name: &str, project: &str, proxy: &Proxy) {
    service(
        admin,
        json!({"name": "edgeproxy", "tier": "critical", "engine": engine_name,
               "compose_project": project, "compose_service": "proxy"}),
    )
    .await;
    service(
        admin,
        json!({"name": "ledger", "tier": "application", "engine": engine_name,
               "compose_project": project, "compose_service": "ledger"}),
    )
    .await;
    poll(WAIT, "edgeproxy with its running container", async || {
        let list: Vec<ServiceOverview> = op.json("/api/v1/services").await;
        let o = list
            .iter()
            .find(|o| o.service.name == "edgeproxy")
            .ok_or("not in the inventory")?;
        match o.containers.as_slice() {
            [c] if c.name == proxy.name && c.state == "running" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

fn proxy_actuator(page_path: &str, snippet_path: &str, snippet: &str, reload: &[&str]) -> Value {
    json!({"mode": "proxy", "proxy": {
        "service": "edgeproxy", "page_path": page_path, "snippet_path": snippet_path,
        "snippet": snippet, "reload": reload}})
}

async fn actuator_state(api: &Api, stack: &str) -> String {
    let stacks: Vec<MaintenanceStack> = api.json("/api/v1/maintenance/stacks").await;
    let s = stacks
        .iter()
        .find(|s| s.stack == stack)
        .unwrap_or_else(|| panic!("{stack} not among {stacks:?}"));
    s.actuator
        .as_ref()
        .unwrap_or_else(|| panic!("{stack} has no actuator"))
        .state
        .clone()
}

/// What the maintenance page must never show.
fn assert_no_internals(page: &str, env: &ProxyEnv, reason: &str) {
    for secret in [
        reason,
        "edgeproxy",
        "ledger",
        env.project.as_str(),
        env.proxy.name.as_str(),
        "operator-user",
    ] {
        assert!(!page.contains(secret), "the page shows {secret:?}: {page}");
    }
}

/// The expected end as the page's text shows it (`HH:MM UTC`).
fn shown_time(t: DateTime<Utc>) -> String {
    t.format("%H:%M UTC").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_mode_swaps_the_served_page_and_restores_it_byte_for_byte() {
    let Some(engine) = engine().await else { return };
    let env = proxy_env(&engine, "maint-proxy").await;
    let (admin, op, viewer, proxy) = (&env.admin, &env.op, &env.viewer, &env.proxy);
    let stack = env.project.clone();

    // The stack is known, with its services, and no actuator yet.
    let stacks: Vec<MaintenanceStack> = viewer.json("/api/v1/maintenance/stacks").await;
    let s = stacks
        .iter()
        .find(|s| s.stack == stack)
        .unwrap_or_else(|| panic!("{stack} not among {stacks:?}"));
    assert_eq!(sorted(s.services.clone()), vec!["edgeproxy", "ledger"]);
    assert!(s.actuator.is_none());

    // Actuator validation: admins only, absolute paths, no `..`, short argv.
    let good = proxy_actuator(
        "/www/index.html",
        "/etc/httpd.conf",
        "# maintenance {{page_path}}",
        &["kill", "-HUP", "1"],
    );
    let path = format!("/api/v1/maintenance/actuators/{stack}");
    expect_error(op.send(reqwest::Method::PUT, &path, &good).await, 403).await;
    let long_reload: Vec<&str> = std::iter::repeat_n("x", 33).collect();
    for (what, body) in [
        (
            "a relative page path",
            proxy_actuator("www/index.html", "/etc/httpd.conf", "", &["true"]),
        ),
        (
            "a page path with ..",
            proxy_actuator("/www/../etc/passwd", "/etc/httpd.conf", "", &["true"]),
        ),
        (
            "a snippet path with ..",
            proxy_actuator("/www/index.html", "/etc/../../x.conf", "", &["true"]),
        ),
        (
            "33 reload arguments",
            proxy_actuator("/www/index.html", "/etc/httpd.conf", "", &long_reload),
        ),
        (
            "a runbook that does not exist",
            json!({"mode": "runbook", "runbooks": {"enable": "no-such-runbook",
                                                     "disable": "no-such-runbook"}}),
        ),
    ] {
        let res = admin.send(reqwest::Method::PUT, &path, &body).await;
        let got = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        assert_eq!(got, 400, "{what}: {text}");
    }
    let a = put_actuator(admin, &stack, &good).await;
    assert_eq!(a.stack, stack);
    assert_eq!(a.state, "off");

    // Before: the app.
    assert_eq!(proxy.get("/").await, (200, APP_PAGE.as_bytes().to_vec()));
    assert_eq!(
        proxy.file("/etc/httpd.conf").await.as_deref(),
        Some(APP_CONF)
    );

    // Maintenance for the stack: the proxy serves the page.
    let reason = "Rotating the ledger signing keys (ticket OPS-4711)";
    let until = in_minutes(90);
    let (status, p) = start(op, stack_scope(&stack), reason, until).await;
    assert_eq!(status, 202);
    assert_eq!(sorted(p.services.clone()), vec!["edgeproxy", "ledger"]);
    assert!(p.actuate, "stack scope actuates by default");
    wait_period(viewer, p.id, PeriodStatus::Active).await;
    let during = proxy.page().await;
    assert!(
        during.to_lowercase().contains("maintenance"),
        "the maintenance page: {during}"
    );
    assert!(
        during.contains(&shown_time(until)),
        "the page shows the expected end {}: {during}",
        shown_time(until)
    );
    assert_no_internals(&during, &env, reason);
    assert_eq!(
        proxy
            .file("/etc/httpd.conf")
            .await
            .as_deref()
            .map(str::trim_end),
        Some("# maintenance /www/index.html"),
        "the snippet replaced the configuration"
    );
    assert_eq!(actuator_state(viewer, &stack).await, "on");
    // The page the API renders is the one placed.
    let rendered = viewer
        .get(&format!(
            "/api/v1/maintenance/page?until={}",
            rfc3339(until)
        ))
        .await;
    assert_eq!(rendered.status(), 200);
    assert!(rendered.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(rendered.text().await.unwrap(), during);
    // Every service of the stack shows maintenance.
    wait_board(viewer, "the stack in maintenance", |b| {
        ["edgeproxy", "ledger"]
            .iter()
            .all(|n| listed(b, &[n]) && on_board(b, n).health == ServiceHealth::Maintenance)
    })
    .await;

    // Enabling again changes nothing.
    let (status, again) = start(op, stack_scope(&stack), reason, until).await;
    assert_eq!((status, again.id), (200, p.id));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(proxy.page().await, during);
    assert_eq!(
        proxy
            .file("/etc/httpd.conf")
            .await
            .as_deref()
            .map(str::trim_end),
        Some("# maintenance /www/index.html")
    );

    // The end restores exactly what was there.
    end(op, p.id, "keys rotated").await;
    let ended = wait_period(viewer, p.id, PeriodStatus::Ended).await;
    assert_eq!(proxy.get("/").await, (200, APP_PAGE.as_bytes().to_vec()));
    assert_eq!(
        proxy.file("/etc/httpd.conf").await.as_deref(),
        Some(APP_CONF)
    );
    assert_eq!(actuator_state(viewer, &stack).await, "off");
    let kinds: Vec<&str> = ended.timeline.iter().map(|e| e.kind.as_str()).collect();
    for k in ["enabling", "active", "disabling", "restored", "ended"] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let audit = maintenance_audit(admin).await;
    for action in ["maintenance.enable", "maintenance.disable"] {
        let e: Vec<&AuditEntry> = audit.iter().filter(|e| e.action == action).collect();
        assert_eq!(e.len(), 1, "{action}: {audit:#?}");
        assert_eq!(e[0].outcome, Outcome::Success, "{action}");
    }
    assert_eq!(count(&audit, "maintenance.actuator.set"), 1);

    // Files that did not exist before are removed again afterwards.
    let fresh = proxy_actuator(
        "/www/maintenance.html",
        "/etc/maintenance.conf",
        "# maintenance {{page_file}} in {{page_dir}}",
        &["kill", "-HUP", "1"],
    );
    put_actuator(admin, &stack, &fresh).await;
    assert_eq!(proxy.get("/maintenance.html").await.0, 404);
    assert_eq!(proxy.file("/etc/maintenance.conf").await, None);
    let (_, q) = start(op, stack_scope(&stack), reason, in_minutes(30)).await;
    wait_period(viewer, q.id, PeriodStatus::Active).await;
    let (status, placed) = proxy.get("/maintenance.html").await;
    assert_eq!(status, 200);
    let placed = String::from_utf8_lossy(&placed).into_owned();
    assert!(placed.to_lowercase().contains("maintenance"), "{placed}");
    assert_no_internals(&placed, &env, reason);
    assert_eq!(
        proxy
            .file("/etc/maintenance.conf")
            .await
            .as_deref()
            .map(str::trim_end),
        Some("# maintenance maintenance.html in /www")
    );
    assert_eq!(proxy.get("/").await, (200, APP_PAGE.as_bytes().to_vec()));
    // An actuator in use can be neither removed nor changed (its disable
    // must reload the proxy it enabled).
    expect_error(admin.delete(&path).await, 409).await;
    expect_error(admin.send(reqwest::Method::PUT, &path, &good).await, 409).await;
    end(op, q.id, "").await;
    wait_period(viewer, q.id, PeriodStatus::Ended).await;
    assert_eq!(
        proxy.get("/maintenance.html").await.0,
        404,
        "the page is gone"
    );
    assert_eq!(
        proxy.file("/etc/maintenance.conf").await,
        None,
        "the snippet that was not there before is removed"
    );
    assert_eq!(
        proxy.file("/etc/httpd.conf").await.as_deref(),
        Some(APP_CONF)
    );
    assert_eq!(proxy.get("/").await, (200, APP_PAGE.as_bytes().to_vec()));
    // Off again: the actuator can go.
    assert_eq!(admin.delete(&path).await.status(), 204);
    let stacks: Vec<MaintenanceStack> = viewer.json("/api/v1/maintenance/stacks").await;
    assert!(stacks
        .iter()
        .any(|s| s.stack == stack && s.actuator.is_none()));

    drop(env);
    release(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_reload_rolls_the_proxy_back_and_fails_the_period() {
    let Some(engine) = engine().await else { return };
    let env = proxy_env(&engine, "maint-rollback").await;
    let (admin, op, viewer, proxy) = (&env.admin, &env.op, &env.viewer, &env.proxy);
    let stack = env.project.clone();
    // The reload refuses the maintenance configuration (as `nginx -t` would
    // refuse a broken snippet) and accepts the original one: the rollback's
    // reload succeeds, so the restore is unambiguous.
    put_actuator(
        admin,
        &stack,
        &proxy_actuator(
            "/www/index.html",
            "/etc/httpd.conf",
            "# maintenance {{page_path}}",
            &["sh", "-c", "! grep -q maintenance /etc/httpd.conf"],
        ),
    )
    .await;
    let (status, p) = start(
        op,
        stack_scope(&stack),
        "Swapping certificates",
        in_minutes(30),
    )
    .await;
    assert_eq!(status, 202);
    let failed = wait_period(viewer, p.id, PeriodStatus::Failed).await;
    let error = failed.period.error.clone().unwrap_or_default();
    assert!(
        error.to_lowercase().contains("reload"),
        "the error names the reload: {error:?}"
    );
    assert!(failed.period.enabled_at.is_none(), "it never was active");
    assert!(failed.timeline.iter().any(|e| e.kind == "failed"));
    // Rolled back: the app is served and configured as before.
    assert_eq!(proxy.get("/").await, (200, APP_PAGE.as_bytes().to_vec()));
    assert_eq!(
        proxy.file("/etc/httpd.conf").await.as_deref(),
        Some(APP_CONF)
    );
    assert_eq!(actuator_state(viewer, &stack).await, "off");
    // Not in effect: the board shows no maintenance, and it is not open.
    let b = wait_board(viewer, "no maintenance banner", |b| {
        b.maintenance.is_empty() && listed(b, &["edgeproxy"])
    })
    .await;
    assert!(on_board(&b, "edgeproxy").maintenance.is_none());
    assert!(periods(viewer, "open").await.is_empty());
    expect_error(
        op.post(
            &format!("/api/v1/maintenance/periods/{}/end", p.id),
            &json!({}),
        )
        .await,
        409,
    )
    .await;
    let audit = maintenance_audit(admin).await;
    let enable: Vec<&AuditEntry> = audit
        .iter()
        .filter(|e| e.action == "maintenance.enable")
        .collect();
    assert_eq!(enable.len(), 1, "{audit:#?}");
    assert_eq!(enable[0].outcome, Outcome::Failure);

    // A reload that always fails cannot even confirm the restore: the
    // actuator stays half-done (`disabling`, with the error), the period
    // fails. An admin may fix the reload then (no period is in effect), and
    // the next maintenance restores first, then applies, then ends cleanly.
    put_actuator(
        admin,
        &stack,
        &proxy_actuator(
            "/www/index.html",
            "/etc/httpd.conf",
            "# maintenance {{page_path}}",
            &["false"],
        ),
    )
    .await;
    let (_, broken) = start(op, stack_scope(&stack), "Second try", in_minutes(30)).await;
    let failed = wait_period(viewer, broken.id, PeriodStatus::Failed).await;
    assert!(
        failed
            .period
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("restoring failed too"),
        "{:?}",
        failed.period.error
    );
    assert_eq!(actuator_state(viewer, &stack).await, "disabling");
    let fixed = proxy_actuator(
        "/www/index.html",
        "/etc/httpd.conf",
        "# maintenance {{page_path}}",
        &["kill", "-HUP", "1"],
    );
    put_actuator(admin, &stack, &fixed).await;
    let (_, again) = start(op, stack_scope(&stack), "Third try", in_minutes(30)).await;
    wait_period(viewer, again.id, PeriodStatus::Active).await;
    assert_eq!(actuator_state(viewer, &stack).await, "on");
    let served = proxy.get("/").await;
    assert!(
        String::from_utf8_lossy(&served.1).contains("scheduled maintenance"),
        "{served:?}"
    );
    end(op, again.id, "").await;
    wait_period(viewer, again.id, PeriodStatus::Ended).await;
    assert_eq!(proxy.get("/").await, (200, APP_PAGE.as_bytes().to_vec()));
    assert_eq!(
        proxy.file("/etc/httpd.conf").await.as_deref(),
        Some(APP_CONF)
    );
    assert_eq!(actuator_state(viewer, &stack).await, "off");

    drop(env);
    release(engine).await;
}

/// Crash safety of actuation with real processes: an `opsdeck serve`
/// killed with SIGKILL while enabling proxy-mode maintenance (the page and
/// snippet placed, the reload still running) leaves the enable run
/// `interrupted` and the period in effect (`enabling`: marked, alarms held,
/// nothing claims success); a second process on the same database ends it
/// and restores the proxy byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_enable_leaves_maintenance_in_effect_and_the_next_restores_it() {
    use opsdeck_e2e::process::OpsdeckProcess;
    use opsdeck_wire::{AuditVerifyReport, Run, RunStatus, StepStatus};

    let Some(engine) = engine().await else { return };
    let (database, options) = opsdeck_e2e::pg::fresh_database().await;
    let url = opsdeck_e2e::pg::url(&database);
    let pool = opsdeck::db::pool(options).await.expect("pool");
    for (name, role) in [("ops", Role::Admin), ("oper", Role::Operator)] {
        opsdeck::users::cli_add(&pool, name, role, None, opsdeck_e2e::server::PASSWORD)
            .await
            .expect("user");
    }
    // The private engine is the processes' `local` engine (registered from
    // DOCKER_HOST on the first start); runs lease for 3 s.
    let host = engine.host();
    let env = [
        ("OPSDECK_RUN_LEASE_SECS", "3"),
        ("DOCKER_HOST", host.as_str()),
    ];
    let first = OpsdeckProcess::start(&url, &env).await;
    first.wait_ready().await;
    let admin = first.login("ops").await;
    let op = first.login("oper").await;
    let project = unique_project("maint-crash");
    let proxy = Proxy::start(&engine, &project).await;
    add_proxy_stack(&admin, &op, "local", &project, &proxy).await;
    let stack = project.clone();
    // The reload is slow only while the maintenance configuration is in
    // place (it marks that it started): enabling sits in it, restoring
    // does not.
    const MARK: &str = "/reload-started";
    let slow_reload = [
        "sh",
        "-c",
        "if grep -q maintenance /etc/httpd.conf; then touch /reload-started; sleep 30; fi; kill -HUP 1",
    ];
    let actuator = proxy_actuator(
        "/www/index.html",
        "/etc/httpd.conf",
        "# maintenance {{page_path}}",
        &slow_reload,
    );
    put_actuator(&admin, &stack, &actuator).await;
    // Before: the app, and the files' modes.
    assert_eq!(proxy.get("/").await, (200, APP_PAGE.as_bytes().to_vec()));
    assert_eq!(
        proxy.file("/etc/httpd.conf").await.as_deref(),
        Some(APP_CONF)
    );
    let modes = ["stat", "-c", "%a %s", "/www/index.html", "/etc/httpd.conf"];
    let (code, modes_before) = proxy.exec(&modes).await;
    assert_eq!(code, 0, "stat: {modes_before}");
    assert_eq!(proxy.file(MARK).await, None);

    // Maintenance through the first process; killed inside the reload.
    let (status, p) = start(
        &op,
        stack_scope(&stack),
        "Replacing the proxy's certificates",
        in_minutes(60),
    )
    .await;
    assert_eq!(status, 202);
    assert!(p.actuate);
    let enable_run = p.enable_run_id.expect("an enable run");
    poll(WAIT, "the page placed and the reload running", async || {
        let (code, body) = proxy.get("/").await;
        let page = String::from_utf8_lossy(&body).into_owned();
        let conf = proxy.file("/etc/httpd.conf").await;
        let reloading = proxy.file(MARK).await.is_some();
        let state = actuator_state(&op, &stack).await;
        if code == 200
            && page.to_lowercase().contains("maintenance")
            && conf.as_deref().map(str::trim_end) == Some("# maintenance /www/index.html")
            && reloading
            && state == "enabling"
        {
            Ok(())
        } else {
            Err(format!(
                "GET / {code} {page:?}, httpd.conf {conf:?}, reloading {reloading}, actuator {state}"
            ))
        }
    })
    .await;
    let d = detail(&op, p.id).await;
    assert_eq!(d.period.status, PeriodStatus::Enabling, "{}", describe(&d));
    first.kill().await;
    let row: (String, String) = sqlx::query_as(
        "SELECT r.status, p.status FROM runs r, maintenance_periods p
         WHERE r.id = $1 AND p.id = $2",
    )
    .bind(enable_run)
    .bind(p.id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        row,
        ("running".to_owned(), "enabling".to_owned()),
        "the kill itself marks nothing done"
    );

    // The second process: the run's lease runs out, nothing claims success.
    let second = OpsdeckProcess::start(&url, &env).await;
    second.wait_ready().await;
    let admin = second.login("ops").await;
    let op = second.login("oper").await;
    let interrupted = wait_status(&op, enable_run, RunStatus::Interrupted).await;
    assert_eq!(
        interrupted
            .steps
            .iter()
            .map(|s| s.status)
            .collect::<Vec<_>>(),
        vec![StepStatus::Interrupted],
        "{:?}",
        interrupted.steps
    );
    // Still in effect after a few more seconds (reaper and maintenance
    // ticks have run): marked, never active, no error.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let d = detail(&op, p.id).await;
    assert_eq!(d.period.status, PeriodStatus::Enabling, "{}", describe(&d));
    assert!(d.period.enabled_at.is_none(), "{}", describe(&d));
    assert!(d.period.ended_at.is_none(), "{}", describe(&d));
    assert!(
        !d.timeline.iter().any(|e| e.kind == "active"),
        "{}",
        describe(&d)
    );
    assert_eq!(
        periods(&op, "open")
            .await
            .iter()
            .map(|q| q.id)
            .collect::<Vec<_>>(),
        vec![p.id]
    );
    assert_eq!(actuator_state(&op, &stack).await, "enabling");
    let b = wait_board(&op, "the stack in maintenance on the second process", |b| {
        ["edgeproxy", "ledger"]
            .iter()
            .all(|n| listed(b, &[n]) && on_board(b, n).health == ServiceHealth::Maintenance)
    })
    .await;
    assert_eq!(
        b.maintenance
            .iter()
            .map(|m| m.period_id)
            .collect::<Vec<_>>(),
        vec![p.id],
        "the banner"
    );
    let audit = maintenance_audit(&admin).await;
    assert!(
        !audit.iter().any(|e| e.action == "maintenance.enable"),
        "nothing about the enable is recorded as done: {audit:#?}"
    );
    // The crash left the page in place (undone by the next enable or disable).
    assert!(String::from_utf8_lossy(&proxy.get("/").await.1)
        .to_lowercase()
        .contains("maintenance"));

    // The actuator cannot be changed while the period is in effect.
    let fast = proxy_actuator(
        "/www/index.html",
        "/etc/httpd.conf",
        "# maintenance {{page_path}}",
        &["kill", "-HUP", "1"],
    );
    let message = expect_error(
        admin
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/maintenance/actuators/{stack}"),
                &fast,
            )
            .await,
        409,
    )
    .await;
    assert!(message.contains(&format!("#{}", p.id)), "{message}");

    // The operator ends it through the second process: the saved files come
    // back byte for byte (same modes), the app is served again.
    let ending = end(&op, p.id, "crashed mid-enable; back to normal").await;
    let disable_run = ending.disable_run_id.expect("a disable run");
    let ended = wait_period(&op, p.id, PeriodStatus::Ended).await;
    let done: Run = wait_status(&op, disable_run, RunStatus::Succeeded).await;
    assert_eq!(proxy.get("/").await, (200, APP_PAGE.as_bytes().to_vec()));
    assert_eq!(
        proxy.file("/etc/httpd.conf").await.as_deref(),
        Some(APP_CONF)
    );
    let (code, modes_after) = proxy.exec(&modes).await;
    assert_eq!(code, 0, "stat: {modes_after}");
    assert_eq!(modes_after, modes_before, "modes and sizes as before");
    assert_eq!(actuator_state(&op, &stack).await, "off");
    assert!(ended.period.enabled_at.is_none(), "it never was active");
    assert!(ended.period.error.is_none(), "{}", describe(&ended));
    let kinds: Vec<&str> = ended.timeline.iter().map(|e| e.kind.as_str()).collect();
    for k in [
        "enabling",
        "end_requested",
        "disabling",
        "restored",
        "ended",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    assert!(!kinds.contains(&"active"), "{kinds:?}");
    assert!(
        done.steps.iter().any(|s| s.output.contains("restored")),
        "{:?}",
        done.steps
    );
    let b = wait_board(&op, "no maintenance any more", |b| {
        b.maintenance.is_empty()
            && ["edgeproxy", "ledger"]
                .iter()
                .all(|n| listed(b, &[n]) && on_board(b, n).maintenance.is_none())
    })
    .await;
    assert!(b.maintenance.is_empty());
    // The enable run stays interrupted: it never succeeded.
    let after = wait_run(&op, enable_run, "the enable run", |_| true).await;
    assert_eq!(after.summary.status, RunStatus::Interrupted);

    // The audit: started and ended by the operator, the disable done, the
    // enable never recorded as done; the chain is intact.
    let audit = maintenance_audit(&admin).await;
    let of = |action: &str| -> Vec<&AuditEntry> {
        audit.iter().filter(|e| e.action == action).collect()
    };
    assert_eq!(of("maintenance.start").len(), 1, "{audit:#?}");
    assert_eq!(of("maintenance.start")[0].outcome, Outcome::Success);
    assert_eq!(of("maintenance.end").len(), 1, "{audit:#?}");
    assert_eq!(of("maintenance.disable").len(), 1, "{audit:#?}");
    assert_eq!(of("maintenance.disable")[0].outcome, Outcome::Success);
    assert!(of("maintenance.enable").is_empty(), "{audit:#?}");
    let interrupted: AuditPage = admin
        .json("/api/v1/audit?action=run.interrupted&limit=50")
        .await;
    assert!(
        interrupted
            .entries
            .iter()
            .any(|e| e.target.as_deref() == Some(format!("run:{enable_run}").as_str())),
        "{:#?}",
        interrupted.entries
    );
    let report: AuditVerifyReport = admin.json("/api/v1/audit/verify").await;
    assert!(report.ok, "audit chain intact: {report:?}");

    second.stop().await;
    drop(proxy);
    release(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_periods_on_a_proxy_stack_place_the_page_once() {
    let Some(engine) = engine().await else { return };
    let env = proxy_env(&engine, "maint-overlap").await;
    let (admin, op, viewer, proxy) = (&env.admin, &env.op, &env.viewer, &env.proxy);
    let stack = env.project.clone();
    put_actuator(
        admin,
        &stack,
        &proxy_actuator(
            "/www/index.html",
            "/etc/httpd.conf",
            "# maintenance {{page_path}}",
            &["kill", "-HUP", "1"],
        ),
    )
    .await;

    // By hand first.
    let (_, first) = start(op, stack_scope(&stack), "Hand-started work", in_minutes(60)).await;
    wait_period(viewer, first.id, PeriodStatus::Active).await;
    let page = proxy.page().await;
    assert!(page.to_lowercase().contains("maintenance"), "{page}");

    // A window whose occurrence is in progress opens a second period.
    let now = whole(Utc::now());
    let w = create_window(
        op,
        &once_window(
            "Planned database work",
            stack_scope(&stack),
            now - ChronoDuration::minutes(1),
            now + ChronoDuration::minutes(10),
        ),
    )
    .await;
    let second = window_period(viewer, w.id).await;
    assert_ne!(second.id, first.id);
    assert_eq!(second.ends_at, now + ChronoDuration::minutes(10));
    wait_period(viewer, second.id, PeriodStatus::Active).await;
    assert_eq!(proxy.page().await, page, "the page is placed once");
    let b = board(viewer).await;
    assert_eq!(b.maintenance.len(), 2, "{:?}", b.maintenance);

    // The first ends: the second still wants the page.
    end(op, first.id, "").await;
    wait_period(viewer, first.id, PeriodStatus::Ended).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(proxy.page().await, page, "still in maintenance");
    assert_eq!(
        proxy
            .file("/etc/httpd.conf")
            .await
            .as_deref()
            .map(str::trim_end),
        Some("# maintenance /www/index.html")
    );
    assert_eq!(actuator_state(viewer, &stack).await, "on");
    wait_board(viewer, "the stack still in maintenance", |b| {
        listed(b, &["edgeproxy"])
            && on_board(b, "edgeproxy")
                .maintenance
                .as_ref()
                .map(|m| m.period_id)
                == Some(second.id)
    })
    .await;

    // The second ends: the original comes back, byte for byte.
    end(op, second.id, "").await;
    wait_period(viewer, second.id, PeriodStatus::Ended).await;
    assert_eq!(proxy.get("/").await, (200, APP_PAGE.as_bytes().to_vec()));
    assert_eq!(
        proxy.file("/etc/httpd.conf").await.as_deref(),
        Some(APP_CONF)
    );
    assert_eq!(actuator_state(viewer, &stack).await, "off");
    // The occurrence ended by hand is not started again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let of_window: Vec<MaintenancePeriod> = periods(viewer, "all")
        .await
        .into_iter()
        .filter(|p| p.window_id == Some(w.id))
        .collect();
    assert_eq!(of_window.len(), 1, "{of_window:#?}");

    drop(env);
    release(engine).await;
}
