//! `opsdeck serve` with its own Postgres cluster: created on first start,
//! reused with its data on the next, stopped with the server, and clear
//! errors when it cannot run. These run the real binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use opsdeck_e2e::proc::free_port;
use opsdeck_e2e::server::Api;
use opsdeck_e2e::util::opsdeck_bin;
use serde_json::json;

/// A running `opsdeck serve`, killed on drop if the test did not stop it.
struct Opsdeck {
    child: Child,
    base: String,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Opsdeck {
    fn start(data_dir: &Path, admin_password: Option<&str>) -> Opsdeck {
        let bin = opsdeck_bin();
        assert!(
            bin.is_file(),
            "{} is missing: build it first (make test does)",
            bin.display()
        );
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .env_remove("DATABASE_URL")
            .env("OPSDECK_DATA_DIR", data_dir)
            .env("OPSDECK_LISTEN", format!("127.0.0.1:{port}"))
            .env("OPSDECK_WEB_ROOT", opsdeck_e2e::server::web_root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match admin_password {
            Some(p) => cmd.env("OPSDECK_ADMIN_PASSWORD", p),
            None => cmd.env_remove("OPSDECK_ADMIN_PASSWORD"),
        };
        let mut child = cmd.spawn().expect("spawning opsdeck");
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Opsdeck {
            child,
            base: format!("http://127.0.0.1:{port}"),
            stderr: rx,
        }
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(res) = reqwest::get(format!("{}/readyz", self.base)).await {
                if res.status() == 200 {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "opsdeck exited before it was ready ({status}): {}",
                    self.drain().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "not ready in 90 s: {}",
                self.drain().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn drain(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }

    /// SIGTERM, then wait for a clean exit.
    fn stop(&mut self) -> std::process::ExitStatus {
        opsdeck_e2e::proc::signal_pid(self.child.id(), nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "opsdeck did not stop within 60 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Opsdeck {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn postmaster_running(data_dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(data_dir.join("postgres/postmaster.pid")) else {
        return false;
    };
    let Some(pid) = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<i32>().ok())
    else {
        return false;
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_restarts_keeps_data_and_stops_postgres() {
    let dir = tempfile::Builder::new()
        .prefix("opsdeck-embedded-")
        .tempdir_in("/tmp")
        .unwrap();
    let data = dir.path().join("data");

    // First start: creates the cluster and an admin with a printed password.
    let mut first = Opsdeck::start(&data, None);
    first.wait_ready().await;
    let printed = first.drain();
    let password = printed
        .iter()
        .find_map(|l| {
            l.split("password:")
                .nth(1)
                .map(|p| p.trim().trim_end_matches('│').trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no generated password printed: {printed:?}"));
    assert!(
        data.join("postgres/PG_VERSION").is_file(),
        "cluster created in the data directory"
    );
    let admin = Api::new(&first.base);
    let res = admin
        .post(
            "/api/v1/auth/login",
            &json!({"username": "admin", "password": password}),
        )
        .await;
    assert_eq!(res.status(), 200, "the printed password works");
    let me: serde_json::Value = res.json().await.unwrap();
    assert_eq!(me["must_change_password"], true);
    let res = admin
        .post(
            "/api/v1/me/password",
            &json!({"current_password": password, "new_password": "granite-willow-ember-31"}),
        )
        .await;
    assert_eq!(res.status(), 204);
    assert!(first.stop().success(), "clean exit on SIGTERM");
    assert!(!postmaster_running(&data), "Postgres stopped with Opsdeck");

    // Second start: same cluster, data kept, no new password printed.
    let mut second = Opsdeck::start(&data, None);
    second.wait_ready().await;
    let res = Api::new(&second.base)
        .post(
            "/api/v1/auth/login",
            &json!({"username": "admin", "password": "granite-willow-ember-31"}),
        )
        .await;
    assert_eq!(
        res.status(),
        200,
        "the changed password survived the restart"
    );
    assert!(
        !second.drain().iter().any(|l| l.contains("password:")),
        "the password is printed only once"
    );
    assert!(second.stop().success());
    assert!(!postmaster_running(&data));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_does_not_leave_postgres_behind() {
    let dir = tempfile::Builder::new()
        .prefix("opsdeck-embedded-")
        .tempdir_in("/tmp")
        .unwrap();
    let data = dir.path().join("data");
    let mut server = Opsdeck::start(&data, Some("slate-orchid-compass-64"));
    server.wait_ready().await;
    assert!(postmaster_running(&data));
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while postmaster_running(&data) {
        assert!(
            Instant::now() < deadline,
            "Postgres outlived a killed Opsdeck by 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut again = Opsdeck::start(&data, None);
    again.wait_ready().await;
    assert!(again.stop().success());
}

fn run_failing(envs: &[(&str, &str)]) -> String {
    let out = Command::new(opsdeck_bin())
        .arg("migrate")
        .env_remove("DATABASE_URL")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("running opsdeck");
    assert!(!out.status.success(), "expected a failure for {envs:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn clear_error_when_postgres_binaries_are_missing() {
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let err = run_failing(&[
        ("OPSDECK_DATA_DIR", dir.path().to_str().unwrap()),
        ("OPSDECK_PG_BIN", "/nonexistent/postgresql/bin"),
    ]);
    assert!(
        err.contains("PostgreSQL server binaries (initdb, postgres) not found"),
        "{err}"
    );
}

#[test]
fn clear_error_when_the_data_directory_is_unusable() {
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = run_failing(&[("OPSDECK_DATA_DIR", file.to_str().unwrap())]);
    assert!(err.contains("exists but is not a directory"), "{err}");

    let foreign = dir.path().join("foreign");
    std::fs::create_dir_all(foreign.join("postgres")).unwrap();
    std::fs::write(foreign.join("postgres/somefile"), b"x").unwrap();
    let err = run_failing(&[("OPSDECK_DATA_DIR", foreign.to_str().unwrap())]);
    assert!(err.contains("holds no Postgres cluster"), "{err}");
}
