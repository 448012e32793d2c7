//! Signed checkpoints of the audit chain (issue 19, finding 8).
//!
//! The attacks, as the database owner of a real `opsdeck serve`: the three
//! newest entries deleted (the chain itself stays consistent: only its tail
//! is gone), and an entry edited with the whole chain re-hashed after it
//! (every link is consistent again). The chain walk alone passed both;
//! `opsdeck audit verify` must now fail each, naming it, against the
//! checkpoint the server signed and kept in its data directory — and the
//! server must not sign the tampered head as its new checkpoint.

use std::path::Path;
use std::time::Duration;

use opsdeck_e2e::process::OpsdeckProcess;
use opsdeck_e2e::util::{ok_json, poll, process_database};
use opsdeck_wire::AuditVerifyReport;
use serde_json::{json, Value};
use sqlx::PgPool;

fn verify(url: &str, data: &Path) -> (i32, String) {
    let out = std::process::Command::new(opsdeck_e2e::util::opsdeck_bin())
        .args(["audit", "verify"])
        .env("DATABASE_URL", url)
        .env("OPSDECK_DATA_DIR", data)
        .env_remove("OPSDECK_AUDIT_KEY")
        .env("OPSDECK_LOG", "warn")
        .output()
        .expect("running opsdeck audit verify");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn checkpoint(data: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(data.join("audit-checkpoint.json")).ok()?;
    serde_json::from_str(&text).ok()
}

async fn head(pool: &PgPool) -> (i64, String) {
    let (seq, hash): (i64, Vec<u8>) =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_one(pool)
            .await
            .expect("the head");
    (seq, hex::encode(hash))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_expose_truncation_and_a_rehashed_chain() {
    let (url, pool) = process_database().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    let data_s = data.to_str().expect("path").to_owned();
    let p = OpsdeckProcess::start(
        &url,
        &[("OPSDECK_DATA_DIR", &data_s), ("OPSDECK_AUDIT_KEY", "")],
    )
    .await;
    p.wait_ready().await;
    let admin = p.login("ops").await;
    for i in 0..6 {
        let _: Value = ok_json(
            admin
                .post(
                    "/api/v1/tokens",
                    &json!({"name": format!("t{i}"), "role": "viewer"}),
                )
                .await,
            "an audited change",
        )
        .await;
    }
    let (seq, hash) = head(&pool).await;
    assert!(seq >= 6, "{seq} entries");
    poll(
        Duration::from_secs(20),
        "a checkpoint of the head",
        async || match checkpoint(&data) {
            Some(cp) if cp["seq"] == seq && cp["hash"] == hash.as_str() => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("audit-checkpoint.key"))
            .expect("the key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key is private");
    }
    assert!(
        p.log_tail(100_000).contains("audit checkpoint"),
        "the checkpoint is logged too"
    );
    let (code, text) = verify(&url, &data);
    assert_eq!(code, 0, "intact: {text}");
    assert!(text.contains("matches"), "{text}");

    // 1. The database owner deletes the three newest entries.
    for sql in [
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update".to_owned(),
        format!(
            "CREATE TABLE audit_saved AS SELECT * FROM audit_log WHERE seq > {}",
            seq - 3
        ),
        format!("DELETE FROM audit_log WHERE seq > {}", seq - 3),
    ] {
        sqlx::query(&sql).execute(&pool).await.expect(&sql);
    }
    let (code, text) = verify(&url, &data);
    assert_eq!(code, 1, "truncated: {text}");
    assert!(
        text.contains("TAMPERED") && text.contains("truncated"),
        "{text}"
    );
    assert!(text.contains("3 newest entries removed"), "{text}");
    let report: AuditVerifyReport = admin.json("/api/v1/audit/verify").await;
    assert!(
        !report.ok
            && report
                .problem
                .as_deref()
                .unwrap_or("")
                .contains("truncated"),
        "the API's verify reads the checkpoint too: {report:?}"
    );
    // The server does not sign the shorter chain.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let cp = checkpoint(&data).expect("the checkpoint");
    assert_eq!(
        cp["seq"], seq,
        "the checkpoint was replaced by a truncated head: {cp}"
    );
    // Put back exactly as they were: intact again.
    for sql in [
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_chain",
        "INSERT INTO audit_log SELECT * FROM audit_saved",
        "ALTER TABLE audit_log ENABLE TRIGGER audit_log_chain",
    ] {
        sqlx::query(sql).execute(&pool).await.expect(sql);
    }
    let (code, text) = verify(&url, &data);
    assert_eq!(code, 0, "restored: {text}");

    // 2. The owner edits entry 2 and re-hashes every entry after it, so
    // each link is consistent again.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(7262383316112251)")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET detail = 'nothing to see' WHERE seq = 2")
        .execute(&mut *tx)
        .await
        .unwrap();
    let (last,): (i64,) = sqlx::query_as("SELECT max(seq) FROM audit_log")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    for s in 2..=last {
        sqlx::query(
            "UPDATE audit_log a SET prev_hash = p.hash,
                 hash = audit_entry_hash(p.hash, a.seq, a.at, a.actor_id, a.actor, a.actor_kind,
                                         a.action, a.target, a.params, a.source, a.outcome, a.detail)
             FROM audit_log p WHERE p.seq = a.seq - 1 AND a.seq = $1",
        )
        .bind(s)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let report: AuditVerifyReport = admin.json("/api/v1/audit/verify").await;
    assert!(
        !report.ok,
        "the chain walk alone would pass; the checkpoint does not: {report:?}"
    );
    let (code, text) = verify(&url, &data);
    assert_eq!(code, 1, "re-hashed: {text}");
    assert!(
        text.contains("TAMPERED") && text.contains("forged") && text.contains("re-hashed"),
        "{text}"
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    let cp = checkpoint(&data).expect("the checkpoint");
    assert_eq!(
        cp["hash"],
        hash.as_str(),
        "the forged head was not signed: {cp}"
    );

    // An edited checkpoint file is caught by its signature.
    let mut forged = cp.clone();
    forged["seq"] = json!(1);
    std::fs::write(data.join("audit-checkpoint.json"), forged.to_string()).unwrap();
    let (code, text) = verify(&url, &data);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("signature"), "{text}");
    p.stop().await;
}
