//! The `opsdeck` command line: passwords from stdin, audited changes.

use std::io::Write;
use std::process::{Command, Stdio};

use opsdeck_e2e::server::{Api, TestServer};
use serde_json::json;

fn opsdeck(server: &TestServer, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(opsdeck_e2e::util::opsdeck_bin())
        .args(args)
        .env("DATABASE_URL", opsdeck_e2e::pg::url(&server.database))
        .env("OPSDECK_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running opsdeck");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_commands_read_passwords_from_stdin_and_are_audited() {
    let server = TestServer::start().await;
    let out = opsdeck(
        &server,
        &["user", "add", "dana", "--role", "operator"],
        "quartz-lagoon-meteor-88\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let res = Api::new(&server.base)
        .post(
            "/api/v1/auth/login",
            &json!({"username": "dana", "password": "quartz-lagoon-meteor-88"}),
        )
        .await;
    assert_eq!(res.status(), 200);

    let weak = opsdeck(&server, &["user", "add", "erin"], "password1234\n");
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("too common"));
    let empty = opsdeck(&server, &["user", "add", "erin"], "");
    assert!(!empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("no password"));

    let list = opsdeck(&server, &["user", "list"], "");
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains("dana") && text.contains("operator") && !text.contains("erin"),
        "{text}"
    );

    let session = Api::new(&server.base);
    let res = session
        .post(
            "/api/v1/auth/login",
            &json!({"username": "dana", "password": "quartz-lagoon-meteor-88"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let out = opsdeck(
        &server,
        &["user", "passwd", "dana"],
        "basalt-harbor-violet-17\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        session.get("/api/v1/me").await.status(),
        401,
        "passwd ends sessions"
    );
    let out = opsdeck(&server, &["user", "disable", "dana"], "");
    assert!(out.status.success());
    let res = Api::new(&server.base)
        .post(
            "/api/v1/auth/login",
            &json!({"username": "dana", "password": "basalt-harbor-violet-17"}),
        )
        .await;
    assert_eq!(res.status(), 401, "disabled");

    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log WHERE actor LIKE 'cli:%' AND target = 'user:dana' ORDER BY seq")
        .fetch_all(&server.pool)
        .await
        .unwrap();
    assert_eq!(
        actions,
        ["user.create", "user.password_reset", "user.update"]
    );
    let leaked: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE params::text LIKE '%quartz-lagoon%' OR params::text LIKE '%basalt-harbor%'")
        .fetch_one(&server.pool)
        .await
        .unwrap();
    assert_eq!(leaked, 0);
}

#[test]
fn help_documents_every_setting() {
    let out = Command::new(opsdeck_e2e::util::opsdeck_bin())
        .arg("--help")
        .output()
        .expect("opsdeck --help");
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "OPSDECK_LISTEN",
        "OPSDECK_DATA_DIR",
        "DATABASE_URL",
        "DOCKER_HOST",
        "OPSDECK_ADMIN_PASSWORD",
        "OPSDECK_CONFIG",
        "OPSDECK_WEB_ROOT",
        "OPSDECK_LOG_FORMAT",
        "OPSDECK_PUBLIC_URL",
    ] {
        assert!(help.contains(var), "--help does not mention {var}");
    }
}
