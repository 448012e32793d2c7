//! Secrets at rest and stored credentials that must not follow a change of
//! server (issue 19, findings 5 and 1), as an attacker would try them:
//!
//! * every kind of secret is created through the API, then `pg_dump` of the
//!   panel's database must contain none of them (check password, heartbeat
//!   token, channel secrets, S3 secret key, the ack-link HMAC key);
//! * a real `opsdeck serve` refuses to start with a wrong or a missing key
//!   and says why; `opsdeck secrets rotate` re-seals everything, refuses
//!   while a panel runs, and afterwards the password of a Redis check still
//!   works and so does the heartbeat token;
//! * a check moved to a fake Postgres server that asks for a cleartext
//!   password, a channel moved to a fake SMTP server that offers AUTH, and
//!   an S3 target moved to a fake endpoint never receive the stored secret
//!   (the same fake receives a secret given again in the request: the
//!   listeners do capture what arrives);
//! * backups never dump the panel's own database.

use std::time::{Duration, Instant};

use base64::Engine;
use opsdeck_e2e::fixtures::{pg_tool, tcp_to_cluster};
use opsdeck_e2e::process::{opsdeck_bin, OpsdeckProcess};
use opsdeck_e2e::redis::Redis;
use opsdeck_e2e::s3::S3Server;
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::util::{add_admin, ok_json};
use opsdeck_wire::{BackupTarget, Channel, Check, CheckStatus, ProbeResult, Role};
use reqwest::Method;
use serde_json::{json, Value};

mod fakes;
use fakes::{carries, fake_http, fake_postgres, fake_smtp, seen_text};

const DAY: u32 = 86_400;

/// The answer must be a 400 naming `field`.
async fn field_error(res: reqwest::Response, field: &str) -> String {
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or_default();
    assert_eq!(status, 400, "expected a field error on {field}: {body}");
    assert_eq!(body["error"]["field"], field, "{body}");
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn run_check(api: &Api, id: i64) -> ProbeResult {
    ok_json(
        api.post(&format!("/api/v1/checks/{id}/run"), &json!({}))
            .await,
        "run check",
    )
    .await
}

async fn add_check(api: &Api, body: Value) -> Check {
    ok_json(api.post("/api/v1/checks", &body).await, "create check").await
}

/// `pg_dump` (data and schema) of a database of the test cluster.
async fn dump(database: &str) -> String {
    let out = tokio::process::Command::new(pg_tool("pg_dump"))
        .arg("--no-owner")
        .arg(format!("--dbname={}", opsdeck_e2e::pg::url(database)))
        .output()
        .await
        .expect("running pg_dump");
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 dump")
}

/// Every kind of secret, created through the API, is absent from a dump of
/// the panel's database; each still works where it is used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_dump_holds_no_stored_secret() {
    let Ok(s3) = S3Server::shared() else {
        return;
    };
    let Ok(redis) = tokio::task::spawn_blocking(Redis::shared).await.unwrap() else {
        return;
    };
    let s = TestServer::start_with(|s| {
        s.schedules = false;
        s.escalations = false;
    })
    .await;
    let admin = s.user(Role::Admin).await;

    // A database check whose password is checked by the server.
    let redis_pw = redis.password().expect("the shared Redis has a password");
    let rc = add_check(
        &admin,
        json!({"name": "cache", "interval_s": DAY, "timeout_ms": 5000,
               "spec": {"kind": "redis", "url": redis.url()}, "password": redis_pw}),
    )
    .await;
    assert!(rc.has_password);
    assert_eq!(run_check(&admin, rc.id).await.status, CheckStatus::Ok);
    // A Postgres check with a password of its own.
    let pg_pw = "pg-check-password-6c1f0e";
    add_check(
        &admin,
        json!({"name": "ledger", "interval_s": DAY, "timeout_ms": 5000,
               "spec": {"kind": "postgres", "url": "postgres://app@127.0.0.1:1/app"},
               "password": pg_pw}),
    )
    .await;
    // A heartbeat token.
    let hb = add_check(
        &admin,
        json!({"name": "nightly", "spec": {"kind": "heartbeat", "period_s": 3600, "grace_s": 60}}),
    )
    .await;
    let path = hb.heartbeat_path.clone().expect("the heartbeat URL");
    let token = path.rsplit('/').next().unwrap().to_owned();
    // Channel secrets: a webhook HMAC key, an SMS gateway token, an SMTP password.
    let hook_secret = "webhook-hmac-key-93b7a2";
    let sms_token = "sms-gateway-token-2f8e41";
    let smtp_pw = "smtp-password-5d0c77";
    for body in [
        json!({"name": "hook", "kind": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}, "secret": hook_secret}),
        json!({"name": "pager", "kind": "sms", "config": {"url": "http://127.0.0.1:9/sms"}, "secret": sms_token}),
        json!({"name": "mail", "kind": "email", "config": {"smtp_host": "127.0.0.1", "smtp_port": 2525,
               "smtp_tls": "none", "smtp_username": "ops", "from": "ops@example.com"}, "secret": smtp_pw}),
    ] {
        let c: Channel = ok_json(admin.post("/api/v1/channels", &body).await, "channel").await;
        assert!(c.has_secret);
    }
    // An S3 target's secret access key.
    let bucket = s3.bucket("secrets").await;
    let target: BackupTarget = ok_json(
        admin
            .post(
                "/api/v1/backup-targets",
                &json!({"name": "offsite", "kind": "s3",
                        "s3": {"endpoint": s3.endpoint(), "bucket": bucket, "prefix": "",
                               "access_key_id": s3.access_key_id(), "allow_http": true},
                        "secret_access_key": s3.secret_access_key()}),
            )
            .await,
        "S3 target",
    )
    .await;
    assert!(target.secret_set);
    // The ack-link HMAC key (made on first use, as minting a link does).
    let ack_key = {
        let mut conn = s.pool.acquire().await.unwrap();
        opsdeck::notify::acklink::server_key(&mut conn)
            .await
            .unwrap()
    };

    let text = dump(&s.database).await;
    let ack_hex: String = ack_key.iter().map(|b| format!("{b:02x}")).collect();
    let ack_b64 = base64::engine::general_purpose::STANDARD.encode(&ack_key);
    for (what, secret) in [
        ("Redis check password", redis_pw),
        ("Postgres check password", pg_pw),
        ("heartbeat token", token.as_str()),
        ("webhook secret", hook_secret),
        ("SMS token", sms_token),
        ("SMTP password", smtp_pw),
        ("S3 secret access key", s3.secret_access_key()),
        ("ack-link key (hex)", ack_hex.as_str()),
        ("ack-link key (base64)", ack_b64.as_str()),
    ] {
        assert!(!text.contains(secret), "the dump contains the {what}");
    }
    assert!(text.contains("v1:"), "sealed values are in the dump");

    // Each still works where it is used: the Redis password, the heartbeat
    // (looked up by its hash), the S3 key (a target change keeping it).
    assert_eq!(run_check(&admin, rc.id).await.status, CheckStatus::Ok);
    let res = reqwest::get(s.url(&path)).await.unwrap();
    assert_eq!(res.status(), 200, "the heartbeat token still works");
    let beat: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT last_heartbeat_at FROM checks WHERE id = $1")
            .bind(hb.id)
            .fetch_one(&s.pool)
            .await
            .unwrap();
    assert!(beat.is_some());
    let res = admin
        .send(
            Method::PUT,
            &format!("/api/v1/backup-targets/{}", target.id),
            &json!({"name": "offsite-2", "kind": "s3",
                    "s3": {"endpoint": s3.endpoint(), "bucket": bucket, "prefix": "p",
                           "access_key_id": s3.access_key_id(), "allow_http": true}}),
        )
        .await;
    let _: BackupTarget = ok_json(res, "rename keeps the S3 key (probe signed with it)").await;
    // A ciphertext moved to another row does not open (bound to its row).
    sqlx::query(
        "UPDATE checks SET secret = (SELECT secret FROM checks WHERE id = $1)
         WHERE id = (SELECT id FROM checks WHERE name = 'ledger')",
    )
    .bind(rc.id)
    .execute(&s.pool)
    .await
    .unwrap();
    let ledger: i64 = sqlx::query_scalar("SELECT id FROM checks WHERE name = 'ledger'")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    // The engine keeps definitions in memory: an edit reloads this one.
    let _: Check = ok_json(
        admin
            .patch(
                &format!("/api/v1/checks/{ledger}"),
                &json!({"name": "ledger-2"}),
            )
            .await,
        "rename",
    )
    .await;
    let r = run_check(&admin, ledger).await;
    assert!(
        r.message.contains("stored password cannot be used"),
        "a swapped ciphertext must not open: {r:?}"
    );
    s.stop().await;
}

/// A check moved to another server (host, port, TLS mode) needs its
/// password again: the fake server that asks for a cleartext password
/// never receives the stored one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_moved_to_a_fake_server_does_not_get_the_stored_password() {
    let s = TestServer::start().await;
    let op = s.user(Role::Operator).await;
    let stored = "stored-db-password-a41c9e";
    let pg_port = tcp_to_cluster().await;
    let url = format!("postgres://opsdeck@127.0.0.1:{pg_port}/{}", s.database);
    let c = add_check(
        &op,
        json!({"name": "db", "interval_s": DAY, "timeout_ms": 3000,
               "spec": {"kind": "postgres", "url": url}, "password": stored}),
    )
    .await;
    let (fake, seen) = fake_postgres().await;
    let moved = format!("postgres://opsdeck@127.0.0.1:{fake}/app?sslmode=disable");
    let res = op
        .patch(
            &format!("/api/v1/checks/{}", c.id),
            &json!({"spec": {"kind": "postgres", "url": moved}}),
        )
        .await;
    // Whatever the answer, make the server probe the check now; the
    // attack is judged by what the fake server received.
    run_check(&op, c.id).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !carries(&seen_text(&seen), stored),
        "the stored password reached the fake server"
    );
    let msg = field_error(res, "password").await;
    assert!(msg.contains("required again"), "{msg}");
    // Only the TLS mode changes: the same rule.
    let res = op
        .patch(
            &format!("/api/v1/checks/{}", c.id),
            &json!({"spec": {"kind": "postgres", "url": format!("{url}?sslmode=disable")}}),
        )
        .await;
    field_error(res, "password").await;
    // Another database on the same server keeps the password.
    let res = op
        .patch(
            &format!("/api/v1/checks/{}", c.id),
            &json!({"spec": {"kind": "postgres", "url": format!("postgres://opsdeck@127.0.0.1:{pg_port}/postgres")}}),
        )
        .await;
    let same: Check = ok_json(res, "same server, other database").await;
    assert!(same.has_password);
    // Given again in the request, a password does go there: the fake
    // captures what arrives.
    let given = "given-again-password-77e0";
    let res = op
        .patch(
            &format!("/api/v1/checks/{}", c.id),
            &json!({"spec": {"kind": "postgres", "url": moved}, "password": given}),
        )
        .await;
    let _: Check = ok_json(res, "move with the password").await;
    run_check(&op, c.id).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !carries(&seen_text(&seen), given) {
        assert!(
            Instant::now() < deadline,
            "the fake server should have received the password given again: {:?}",
            seen_text(&seen)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!carries(&seen_text(&seen), stored));
    s.stop().await;
}

/// A channel moved to another SMTP server or URL host needs its secret
/// again: the fake SMTP server and the fake gateway never see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_moved_to_a_fake_server_does_not_get_the_stored_secret() {
    let s = TestServer::start_with(|s| {
        s.schedules = false;
        s.escalations = false;
    })
    .await;
    let admin = s.user(Role::Admin).await;
    let (good_smtp, _) = fake_smtp().await;
    let (evil_smtp, evil_seen) = fake_smtp().await;
    let stored = "smtp-stored-password-1b2c";
    let mail = |port: u16| {
        json!({"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_tls": "none",
               "smtp_username": "ops", "from": "ops@example.com"})
    };
    let c: Channel = ok_json(
        admin
            .post(
                "/api/v1/channels",
                &json!({"name": "mail", "kind": "email", "config": mail(good_smtp), "secret": stored}),
            )
            .await,
        "email channel",
    )
    .await;
    let put = |body: Value| {
        let admin = admin.clone();
        async move {
            admin
                .send(Method::PUT, &format!("/api/v1/channels/{}", c.id), &body)
                .await
        }
    };
    let res = put(json!({"name": "mail", "kind": "email", "config": mail(evil_smtp)})).await;
    let test = |to: &'static str| {
        let admin = admin.clone();
        async move {
            admin
                .post(
                    &format!("/api/v1/channels/{}/test", c.id),
                    &json!({"to": to}),
                )
                .await
        }
    };
    let _ = test("jane@example.com").await;
    assert!(
        !carries(&seen_text(&evil_seen), stored),
        "the stored SMTP password reached the fake server"
    );
    field_error(res, "secret").await;
    // Given again, it does go there (the fake records AUTH).
    let given = "smtp-given-again-9f3a";
    let res =
        put(json!({"name": "mail", "kind": "email", "config": mail(evil_smtp), "secret": given}))
            .await;
    let _: Channel = ok_json(res, "move with the secret").await;
    let _ = test("jane@example.com").await;
    assert!(
        carries(&seen_text(&evil_seen), given),
        "the fake SMTP server should have received the password given again: {}",
        seen_text(&evil_seen)
    );
    assert!(!carries(&seen_text(&evil_seen), stored));

    // An SMS gateway token and a URL to another host.
    let (good, _) = fake_http().await;
    let (evil, evil_http) = fake_http().await;
    let token = "sms-stored-token-4e5f";
    let sms: Channel = ok_json(
        admin
            .post(
                "/api/v1/channels",
                &json!({"name": "pager", "kind": "sms",
                        "config": {"url": format!("http://127.0.0.1:{good}/sms")}, "secret": token}),
            )
            .await,
        "sms channel",
    )
    .await;
    let res = admin
        .send(
            Method::PUT,
            &format!("/api/v1/channels/{}", sms.id),
            &json!({"name": "pager", "kind": "sms", "config": {"url": format!("http://127.0.0.1:{evil}/sms")}}),
        )
        .await;
    let _ = admin
        .post(
            &format!("/api/v1/channels/{}/test", sms.id),
            &json!({"to": "+15550100"}),
        )
        .await;
    assert!(
        !seen_text(&evil_http).contains(token),
        "the stored SMS token reached the other host"
    );
    field_error(res, "secret").await;
    // A new path on the same host keeps it.
    let res = admin
        .send(
            Method::PUT,
            &format!("/api/v1/channels/{}", sms.id),
            &json!({"name": "pager", "kind": "sms", "config": {"url": format!("http://127.0.0.1:{good}/v2/sms")}}),
        )
        .await;
    let kept: Channel = ok_json(res, "same host").await;
    assert!(kept.has_secret);
    s.stop().await;
}

/// An S3 target moved to another endpoint needs its key again: the fake
/// endpoint gets no request signed with the stored key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_target_moved_to_a_fake_endpoint_does_not_use_the_stored_key() {
    let Ok(s3) = S3Server::shared() else {
        return;
    };
    let s = TestServer::start().await;
    let admin = s.user(Role::Admin).await;
    let bucket = s3.bucket("moved").await;
    let body = |endpoint: String, secret: Option<&str>| {
        let mut v = json!({"name": "offsite", "kind": "s3",
                "s3": {"endpoint": endpoint, "bucket": bucket, "prefix": "",
                       "access_key_id": s3.access_key_id(), "allow_http": true}});
        if let Some(secret) = secret {
            v["secret_access_key"] = json!(secret);
        }
        v
    };
    let t: BackupTarget = ok_json(
        admin
            .post(
                "/api/v1/backup-targets",
                &body(s3.endpoint(), Some(s3.secret_access_key())),
            )
            .await,
        "S3 target",
    )
    .await;
    let (fake, seen) = fake_http().await;
    let res = admin
        .send(
            Method::PUT,
            &format!("/api/v1/backup-targets/{}", t.id),
            &body(format!("http://127.0.0.1:{fake}"), None),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = seen_text(&seen);
    assert!(
        !got.contains(s3.access_key_id()) && got.is_empty(),
        "the fake endpoint got a request signed with the stored key: {got}"
    );
    field_error(res, "secret_access_key").await;
    // Given again, the probe does go there (and fails: it is not S3).
    let res = admin
        .send(
            Method::PUT,
            &format!("/api/v1/backup-targets/{}", t.id),
            &body(format!("http://127.0.0.1:{fake}"), Some("another-key")),
        )
        .await;
    assert_eq!(res.status(), 400);
    assert!(
        seen_text(&seen).contains(s3.access_key_id()),
        "the fake endpoint should have seen the probe signed with the new key"
    );
    s.stop().await;
}

/// Backups never dump the panel's own database: named, the backup fails
/// and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panels_own_database_is_not_backed_up() {
    use opsdeck_e2e::flows::backups::{
        cluster_service, create_plan, finished, postgres_plan, run_plan, run_text,
    };
    let s = TestServer::start().await;
    let admin = s.user(Role::Admin).await;
    cluster_service(&admin, "panel-db", "opsdeck", &s.database).await;
    let dir = tempfile::tempdir().unwrap();
    let _: BackupTarget = ok_json(
        admin
            .post(
                "/api/v1/backup-targets",
                &json!({"name": "local", "kind": "local", "path": dir.path().join("t")}),
            )
            .await,
        "local target",
    )
    .await;
    let plan = create_plan(
        &admin,
        postgres_plan("panel", "panel-db", &[&s.database], "local"),
    )
    .await;
    let run = finished(&admin, run_plan(&admin, plan.id).await).await;
    let text = run_text(&run);
    assert!(
        text.contains("Opsdeck's own database"),
        "the backup of the panel's own database must be refused: {text}"
    );
    assert!(
        opsdeck_e2e::fixtures::files_under(dir.path())
            .iter()
            .all(|f| !f.contains(&s.database)),
        "nothing of the panel's database was stored"
    );
    s.stop().await;
}

async fn wait_exit(p: &OpsdeckProcess) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = p.exited() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "opsdeck should have refused to start:\n{}",
            p.log_tail(4000)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `opsdeck secrets rotate` with the key file of `data`.
async fn rotate(url: &str, data: &std::path::Path) -> std::process::Output {
    tokio::process::Command::new(opsdeck_bin())
        .args(["secrets", "rotate"])
        .env("DATABASE_URL", url)
        .env("OPSDECK_DATA_DIR", data)
        .env_remove("OPSDECK_SECRET_KEY")
        .env_remove("OPSDECK_CONFIG")
        .output()
        .await
        .expect("running opsdeck secrets rotate")
}

/// Real processes: the key file is made on first start; a wrong or missing
/// key refuses the start with a clear message; rotation refuses while a
/// panel runs, then re-seals every value in one go and the features still
/// work with the new key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_keys_refuse_the_start_and_rotation_reseals_everything() {
    let Ok(redis) = tokio::task::spawn_blocking(Redis::shared).await.unwrap() else {
        return;
    };
    let (database, options) = opsdeck_e2e::pg::fresh_database().await;
    let url = opsdeck_e2e::pg::url(&database);
    // Not `opsdeck::db::pool`: that names itself "opsdeck", which rotation
    // counts as a running panel.
    let pool = sqlx::PgPool::connect_with(options).await.unwrap();
    add_admin(&pool, "ops").await;
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let own_key = [
        ("OPSDECK_SECRET_KEY", ""),
        ("OPSDECK_DATA_DIR", data.to_str().unwrap()),
    ];

    let p = OpsdeckProcess::start(&url, &own_key).await;
    p.wait_ready().await;
    let key_file = data.join("secret.key");
    let key_text = std::fs::read_to_string(&key_file).expect("the key file was created");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");
    }
    let api = p.login("ops").await;
    let rc = add_check(
        &api,
        json!({"name": "cache", "interval_s": DAY, "timeout_ms": 5000,
               "spec": {"kind": "redis", "url": redis.url()}, "password": redis.password()}),
    )
    .await;
    assert_eq!(run_check(&api, rc.id).await.status, CheckStatus::Ok);
    let hb = add_check(
        &api,
        json!({"name": "nightly", "spec": {"kind": "heartbeat", "period_s": 3600, "grace_s": 60}}),
    )
    .await;
    let hb_path = hb.heartbeat_path.clone().unwrap();
    let _: Channel = ok_json(
        api.post(
            "/api/v1/channels",
            &json!({"name": "hook", "kind": "webhook", "config": {"url": "http://127.0.0.1:9/h"}, "secret": "hook-secret-1"}),
        )
        .await,
        "channel",
    )
    .await;

    // Rotation refuses while a panel runs (it holds the old key).
    let out = rotate(&url, &data).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stop every replica"), "{err}");
    p.stop().await;

    // A wrong key: refused, with which key the database wants.
    let wrong = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let bad = OpsdeckProcess::start(&url, &[("OPSDECK_SECRET_KEY", wrong.as_str())]).await;
    assert!(!wait_exit(&bad).await.success());
    let log = bad.log_tail(4000);
    assert!(
        log.contains("is not the key the database's secrets are sealed with")
            && log.contains("Refusing to start"),
        "{log}"
    );
    // No key at all (an empty data directory): refused.
    let empty = home.path().join("empty");
    let none = OpsdeckProcess::start(
        &url,
        &[
            ("OPSDECK_SECRET_KEY", ""),
            ("OPSDECK_DATA_DIR", empty.to_str().unwrap()),
        ],
    )
    .await;
    assert!(!wait_exit(&none).await.success());
    let log = none.log_tail(4000);
    assert!(log.contains("no key was given"), "{log}");
    assert!(
        !empty.join("secret.key").exists(),
        "no key made over ciphertext"
    );

    // Rotation, once every panel is gone.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'opsdeck' AND datname = $1",
        )
        .bind(&database)
        .fetch_one(&pool)
        .await
        .unwrap();
        if n == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "panel connections linger");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before: Vec<(i64, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT id, secret, heartbeat_token FROM checks ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let out = rotate(&url, &data).await;
    assert!(
        out.status.success(),
        "rotate failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("re-sealed"), "{said}");
    let new_text = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(new_text, key_text, "the key file holds the new key");
    let old_id = opsdeck::secrets::Key::parse(&key_text)
        .unwrap()
        .id()
        .to_owned();
    let new_id = opsdeck::secrets::Key::parse(&new_text)
        .unwrap()
        .id()
        .to_owned();
    assert_eq!(
        std::fs::read_to_string(data.join(format!("secret.key.{old_id}.bak"))).unwrap(),
        key_text,
        "the old key is kept"
    );
    let after: Vec<(i64, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT id, secret, heartbeat_token FROM checks ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(before.len(), after.len());
    let mut values: Vec<String> = after
        .iter()
        .flat_map(|(_, a, b)| [a.clone(), b.clone()])
        .flatten()
        .collect();
    values.extend(
        sqlx::query_scalar::<_, String>(
            "SELECT secret FROM channels WHERE secret IS NOT NULL
             UNION ALL SELECT sealed FROM server_keys WHERE sealed IS NOT NULL
             UNION ALL SELECT key_check FROM secrets_state",
        )
        .fetch_all(&pool)
        .await
        .unwrap(),
    );
    assert!(values.len() >= 4, "{values:?}");
    for v in &values {
        assert!(
            v.starts_with(&format!("v1:{new_id}:")),
            "every value is sealed with the new key: {v}"
        );
    }
    // The audit entry (the panel is stopped: read the table).
    let rotations: Vec<Value> =
        sqlx::query_scalar("SELECT params FROM audit_log WHERE action = 'secrets.rotate'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rotations.len(), 1, "{rotations:?}");
    assert_eq!(rotations[0]["new_key_id"], new_id.as_str());

    // The panel starts with the new key file; the password and the
    // heartbeat token still work.
    let p = OpsdeckProcess::start(&url, &own_key).await;
    p.wait_ready().await;
    let api = p.login("ops").await;
    assert_eq!(run_check(&api, rc.id).await.status, CheckStatus::Ok);
    let res = reqwest::get(p.url(&hb_path)).await.unwrap();
    assert_eq!(
        res.status(),
        200,
        "the heartbeat token works after rotation"
    );
    let again: Check = api.json(&format!("/api/v1/checks/{}", hb.id)).await;
    assert_eq!(again.heartbeat_path.as_deref(), Some(hb_path.as_str()));
    p.stop().await;
    pool.close().await;
}
