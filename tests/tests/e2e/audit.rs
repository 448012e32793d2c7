//! The audit log: an entry per mutating call, secrets masked, append-only,
//! tampering detected.

use opsdeck_e2e::server::{TestServer, PASSWORD};
use opsdeck_wire::{AuditPage, AuditVerifyReport, CreatedApiToken, Role, User};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutating_call_writes_an_entry() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let secret = "violet-harbour-sunrise-77";
    let user: User = admin
        .post(
            "/api/v1/users",
            &json!({"username": "carol", "role": "viewer", "password": secret}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = user.id;
    assert_eq!(
        admin
            .patch(&format!("/api/v1/users/{id}"), &json!({"role": "operator"}))
            .await
            .status(),
        200
    );
    assert_eq!(
        admin
            .post(
                &format!("/api/v1/users/{id}/password"),
                &json!({"new_password": "amber-canyon-river-1984"})
            )
            .await
            .status(),
        204
    );
    assert_eq!(
        admin
            .delete(&format!("/api/v1/users/{id}/sessions"))
            .await
            .status(),
        200
    );
    let token: CreatedApiToken = admin
        .post("/api/v1/tokens", &json!({"name": "ci", "role": "viewer"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        admin
            .delete(&format!("/api/v1/tokens/{}", token.info.id))
            .await
            .status(),
        204
    );
    assert_eq!(
        admin
            .post(
                "/api/v1/me/password",
                &json!({"current_password": PASSWORD, "new_password": "cobalt-meadow-lantern-55"})
            )
            .await
            .status(),
        204
    );
    let viewer = server.user(Role::Viewer).await;
    assert_eq!(
        viewer
            .post(
                "/api/v1/users",
                &json!({"username": "x1", "role": "admin", "password": secret})
            )
            .await
            .status(),
        403
    );
    assert_eq!(
        viewer
            .post("/api/v1/auth/logout", &json!({}))
            .await
            .status(),
        204
    );

    let page: AuditPage = admin.json("/api/v1/audit?limit=200").await;
    let actions: Vec<(&str, &str, &str)> = page
        .entries
        .iter()
        .rev()
        .map(|e| {
            (
                e.action.as_str(),
                e.actor.as_str(),
                e.target.as_deref().unwrap_or(""),
            )
        })
        .collect();
    let expected = [
        ("auth.login", "admin-user", "user:admin-user"),
        ("user.create", "admin-user", "user:carol"),
        ("user.update", "admin-user", "user:carol"),
        ("user.password_reset", "admin-user", "user:carol"),
        ("user.sessions_end", "admin-user", "user:carol"),
        ("token.create", "admin-user", "token:ci"),
        ("token.revoke", "admin-user", "token:ci"),
        ("user.password_change", "admin-user", "user:admin-user"),
        ("auth.login", "viewer-user", "user:viewer-user"),
        ("request.denied", "viewer-user", "POST /api/v1/users"),
        ("auth.logout", "viewer-user", "user:viewer-user"),
    ];
    // cli_add (test set-up) writes user.create entries by `cli:…`; skip those.
    let from_api: Vec<_> = actions
        .into_iter()
        .filter(|(_, actor, _)| !actor.starts_with("cli:"))
        .collect();
    assert_eq!(from_api, expected);
    let all = serde_json::to_string(&page.entries).unwrap();
    assert!(
        !all.contains(secret) && !all.contains("amber-canyon") && !all.contains(&token.token),
        "no secret reaches the log"
    );
    assert!(
        page.entries
            .iter()
            .filter(|e| !e.actor.starts_with("cli:"))
            .all(|e| e.source.as_deref() == Some("127.0.0.1")),
        "source address recorded"
    );
    let create = page
        .entries
        .iter()
        .find(|e| e.action == "user.create" && e.actor == "admin-user")
        .unwrap();
    assert_eq!(create.params["role"], "viewer");

    let filtered: AuditPage = admin.json("/api/v1/audit?action=token.&limit=10").await;
    assert_eq!(filtered.entries.len(), 2);
    let paged: AuditPage = admin.json("/api/v1/audit?limit=3").await;
    assert_eq!(paged.entries.len(), 3);
    let older: AuditPage = admin
        .json(&format!(
            "/api/v1/audit?limit=3&before={}",
            paged.next_before.unwrap()
        ))
        .await;
    assert!(older.entries.iter().all(|e| e.seq < paged.entries[2].seq));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_refuses_to_change_the_log() {
    let server = TestServer::start().await;
    server.user(Role::Admin).await;
    for sql in [
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let err = sqlx::query(sql).execute(&server.pool).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_detects_a_changed_or_deleted_entry() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    // More entries than chains (16), so one chain holds two or more.
    for i in 0..20 {
        admin
            .post(
                "/api/v1/tokens",
                &json!({"name": format!("t{i}"), "role": "viewer"}),
            )
            .await;
    }
    let report: AuditVerifyReport = admin.json("/api/v1/audit/verify").await;
    assert!(report.ok, "{report:?}");
    assert!(report.checked >= 5);
    let cli = run_verify(&server);
    assert!(
        cli.status.success(),
        "opsdeck audit verify on an intact log: {}",
        String::from_utf8_lossy(&cli.stdout)
    );

    // A superuser can switch the guard off; the chain still tells.
    sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update")
        .execute(&server.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET detail = 'nothing to see' WHERE seq = 3")
        .execute(&server.pool)
        .await
        .unwrap();
    let report: AuditVerifyReport = admin.json("/api/v1/audit/verify").await;
    assert!(!report.ok);
    assert!(
        report
            .problem
            .as_deref()
            .unwrap()
            .contains("entry 3 was changed"),
        "{report:?}"
    );
    let cli = run_verify(&server);
    assert_eq!(cli.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&cli.stdout).contains("TAMPERED"));

    sqlx::query("UPDATE audit_log SET detail = NULL WHERE seq = 3")
        .execute(&server.pool)
        .await
        .unwrap();
    let report: AuditVerifyReport = admin.json("/api/v1/audit/verify").await;
    assert!(
        report.ok,
        "restoring the row restores the chain: {report:?}"
    );
    // The transactions' entries are spread over the chains.
    let (chains,): (i64,) = sqlx::query_as("SELECT count(DISTINCT chain) FROM audit_log")
        .fetch_one(&server.pool)
        .await
        .unwrap();
    assert!(chains > 1, "{chains} chain(s)");
    // An entry with a later one in its chain, deleted: a gap in the chain.
    let (victim, chain): (i64, i16) = sqlx::query_as(
        "SELECT a.seq, a.chain FROM audit_log a
         WHERE EXISTS (SELECT 1 FROM audit_log b WHERE b.chain = a.chain AND b.link > a.link)
         ORDER BY a.seq LIMIT 1",
    )
    .fetch_one(&server.pool)
    .await
    .unwrap();
    sqlx::query("DELETE FROM audit_log WHERE seq = $1")
        .bind(victim)
        .execute(&server.pool)
        .await
        .unwrap();
    let report: AuditVerifyReport = admin.json("/api/v1/audit/verify").await;
    assert!(!report.ok);
    assert!(
        report
            .problem
            .as_deref()
            .unwrap()
            .contains(&format!("an entry is missing in chain {chain} ")),
        "entry {victim} of chain {chain} deleted: {report:?}"
    );
}

fn run_verify(server: &TestServer) -> std::process::Output {
    let bin = opsdeck_e2e::util::opsdeck_bin();
    assert!(
        bin.is_file(),
        "{} is missing: build it first (make test does: cargo build -p opsdeck)",
        bin.display()
    );
    std::process::Command::new(bin)
        .args(["audit", "verify"])
        .env("DATABASE_URL", opsdeck_e2e::pg::url(&server.database))
        .env("OPSDECK_LOG", "warn")
        .output()
        .expect("running opsdeck audit verify")
}
