//! A prune step waiting for the prune policy, then removing stopped
//! containers (through a relay that sees the engine calls).

use super::*;

/// Percent-encodes a query value.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A relay to the private engine's socket that confines *container prunes*
/// to containers carrying `label`, and counts them.
///
/// The private engine is shared by every test running at the same time; an
/// unscoped `POST /containers/prune` would remove the stopped containers of
/// other tests (a service stopped on purpose, a killed container). Opsdeck's
/// request goes through unchanged otherwise: the engine itself does the prune.
struct PruneRelay {
    path: PathBuf,
    prunes: Arc<AtomicUsize>,
    task: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl PruneRelay {
    fn start(target: &Path, label: &str) -> PruneRelay {
        let dir = tempfile::Builder::new()
            .prefix("odk-prune-")
            .tempdir_in("/tmp")
            .expect("relay dir");
        let path = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&path).expect("binding the relay socket");
        let prunes = Arc::new(AtomicUsize::new(0));
        let filter = pct(&json!({ "label": [label] }).to_string());
        let (target, counter) = (target.to_owned(), prunes.clone());
        let task = tokio::spawn(async move {
            // Dropped with the task: every open connection ends with it.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((inbound, _)) = accepted else { continue };
                        conns.spawn(relay(inbound, target.clone(), filter.clone(), counter.clone()));
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        PruneRelay {
            path,
            prunes,
            task,
            _dir: dir,
        }
    }

    fn endpoint(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    fn prunes(&self) -> usize {
        self.prunes.load(Ordering::SeqCst)
    }
}

impl Drop for PruneRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection: requests are read head by head (the body copied by its
/// Content-Length); a chunked or upgraded request ends the parsing and the
/// rest is copied as it is. Answers are copied back unchanged.
async fn relay(
    inbound: UnixStream,
    target: PathBuf,
    filter: String,
    prunes: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    let outbound = UnixStream::connect(&target).await?;
    let (in_r, mut in_w) = inbound.into_split();
    let (mut out_r, mut out_w) = outbound.into_split();
    let back = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut out_r, &mut in_w).await;
        let _ = in_w.shutdown().await;
    });
    let mut r = BufReader::new(in_r);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            if r.read_until(b'\n', &mut line).await? == 0 {
                let _ = out_w.shutdown().await;
                let _ = back.await;
                return Ok(());
            }
            let end = line == b"\r\n" || line == b"\n";
            head.extend_from_slice(&line);
            if end {
                break;
            }
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let (first, headers) = text.split_once("\r\n").unwrap_or((text.as_str(), ""));
        let mut parts = first.splitn(3, ' ');
        let (method, uri, version) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        let uri = if method == "POST" && path.ends_with("/containers/prune") {
            prunes.fetch_add(1, Ordering::SeqCst);
            let mut q: Vec<String> = query
                .split('&')
                .filter(|p| !p.is_empty() && !p.starts_with("filters="))
                .map(str::to_owned)
                .collect();
            q.push(format!("filters={filter}"));
            format!("{path}?{}", q.join("&"))
        } else {
            uri.to_owned()
        };
        out_w
            .write_all(format!("{method} {uri} {version}\r\n{headers}").as_bytes())
            .await?;
        let header = |name: &str| {
            headers.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        };
        let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        if chunked || header("upgrade").is_some() {
            tokio::io::copy(&mut r, &mut out_w).await?;
            let _ = back.await;
            return Ok(());
        }
        let length: u64 = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        tokio::io::copy(&mut (&mut r).take(length), &mut out_w).await?;
    }
}

/// Containers made for one test, force-removed when dropped.
struct Throwaway {
    engine: PrivateDockerd,
    names: Vec<String>,
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let _ = self
            .engine
            .cli()
            .args(["rm", "--force"])
            .args(&self.names)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

async fn create_container(
    docker: &Docker,
    keep: &mut Throwaway,
    name: &str,
    cmd: &[&str],
    labels: &HashMap<String, String>,
) -> String {
    keep.names.push(name.to_owned());
    let body = ContainerCreateBody {
        image: Some(IMAGE.into()),
        cmd: Some(cmd.iter().map(|s| (*s).to_owned()).collect()),
        labels: Some(labels.clone()),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(name).build()),
            body,
        )
        .await
        .unwrap_or_else(|e| panic!("creating {name}: {e}"))
        .id;
    docker
        .start_container(name, None::<StartContainerOptions>)
        .await
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    id
}

const PRUNE: &str = r#"
name: prune-stopped
title: Remove stopped containers
steps:
  - name: prune
    kind: prune
    what: containers
    engine: scoped
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prune_step_waits_for_the_prune_policy_then_removes_stopped_containers() {
    let Some(engine) = engine().await else { return };
    let build = engine.clone();
    tokio::task::spawn_blocking(move || build.build_busybox_image(IMAGE))
        .await
        .expect("build task")
        .expect("the busybox image");
    let docker = opsdeck::docker::connect(Some(&engine.host()))
        .await
        .expect("a client of the private engine");
    let tag = unique_project("prune");
    let label = format!("opsdeck-test.prune={tag}");
    let relay = PruneRelay::start(&engine.dir().join("docker.sock"), &label);
    let mut keep = Throwaway {
        engine: engine.clone(),
        names: Vec::new(),
    };
    let labels = HashMap::from([("opsdeck-test.prune".to_owned(), tag.clone())]);
    let stopped_name = format!("{tag}-stopped");
    let running_name = format!("{tag}-running");
    let stopped = create_container(&docker, &mut keep, &stopped_name, &["true"], &labels).await;
    // Stopped too, but outside the relay's scope: it must survive (the relay
    // really confines the prune, so other tests' containers are safe).
    let outside_name = format!("{tag}-outside");
    create_container(
        &docker,
        &mut keep,
        &outside_name,
        &["true"],
        &HashMap::new(),
    )
    .await;
    create_container(
        &docker,
        &mut keep,
        &running_name,
        &["sleep", "600"],
        &labels,
    )
    .await;
    for name in [&stopped_name, &outside_name] {
        poll(WAIT, "the throwaway container exited", async || {
            let i = inspect(&docker, name).await;
            let s = i.state.and_then(|s| s.status).map(|s| s.to_string());
            (s.as_deref() == Some("exited"))
                .then_some(())
                .ok_or(format!("{name}: {s:?}"))
        })
        .await;
    }

    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    server.create_user("requester", Role::Operator).await;
    let requester = server.login("requester").await;
    server.create_user("second", Role::Operator).await;
    let second = server.login("second").await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "scoped", "endpoint": relay.endpoint()}),
        )
        .await;
    assert_eq!(res.status(), 201, "registering the relayed engine");
    // The engine's supervisor connects in the background: wait for it, as
    // an operator would see it connected on the Engines page.
    opsdeck_e2e::util::poll(
        Duration::from_secs(30),
        "the relayed engine connected",
        async || {
            let engines: Vec<opsdeck_wire::Engine> = admin.json("/api/v1/engines").await;
            match engines.iter().find(|e| e.name == "scoped") {
                Some(e) if e.state == opsdeck_wire::EngineState::Connected => Ok(()),
                other => Err(format!("{:?}", other.map(|e| e.state))),
            }
        },
    )
    .await;
    let rb = create(&admin, PRUNE).await;
    let run = start(&requester, rb.id, json!({})).await;

    // The default `prune` policy parks the run before the step.
    let ap = pending_approval(&requester, run.summary.id).await;
    assert_eq!(ap.step, Some(0));
    assert_eq!(ap.required, 1);
    assert!(
        ap.subject
            .contains("remove unused containers on engine scoped"),
        "{}",
        ap.subject
    );
    let waiting = wait_status(&requester, run.summary.id, RunStatus::Waiting).await;
    assert_eq!(waiting.steps[0].status, StepStatus::Waiting);
    assert_eq!(relay.prunes(), 0, "nothing pruned before the approval");
    inspect(&docker, &stopped_name).await;
    let msg = opsdeck_e2e::util::expect_error(
        requester
            .post(
                &format!("/api/v1/approvals/{}/approve", ap.id),
                &json!({"binding": ap.binding}),
            )
            .await,
        403,
    )
    .await;
    assert!(msg.contains("someone else"), "{msg}");

    let voted: Approval = ok_json(
        second
            .post(
                &format!("/api/v1/approvals/{}/approve", ap.id),
                &json!({"binding": ap.binding, "reason": "stopped leftovers"}),
            )
            .await,
        "approve",
    )
    .await;
    assert_eq!(voted.status, ApprovalStatus::Approved);
    let done = wait_status(&requester, run.summary.id, RunStatus::Succeeded).await;
    let s = step(&done, "prune");
    assert_eq!(s.status, StepStatus::Succeeded);
    assert_eq!(s.result["deleted"], 1, "{:?} {}", s.result, s.output);
    assert!(
        s.output.contains(&stopped),
        "the output lists it: {}",
        s.output
    );
    assert!(done.timeline.iter().any(|e| e.kind == "approval.approved"));
    assert_eq!(relay.prunes(), 1);

    // The engine removed the stopped container and kept the running one.
    let gone = docker
        .inspect_container(&stopped_name, None::<InspectContainerOptions>)
        .await;
    assert!(
        matches!(
            gone,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            })
        ),
        "the stopped container is gone: {gone:?}"
    );
    assert!(is_running(&docker, &running_name).await);
    inspect(&docker, &outside_name).await;
    let audit: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, actor FROM audit_log WHERE action IN ('approval.approve', 'run.step.prune') ORDER BY seq",
    )
    .fetch_all(&server.pool)
    .await
    .unwrap();
    assert_eq!(
        audit,
        vec![
            ("approval.approve".to_owned(), "second".to_owned()),
            ("run.step.prune".to_owned(), "requester".to_owned()),
        ]
    );

    drop(keep);
    drop(relay);
    server.stop().await;
    release(engine).await;
}
