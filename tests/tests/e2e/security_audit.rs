//! Signed checkpoints of the audit chain (issue 19, finding 8).
//!
//! The attacks, as the database owner of a real `opsdeck serve`: the three
//! newest entries of a chain deleted (the chain itself stays consistent:
//! only its tail is gone), and an entry edited with the rest of its chain
//! re-hashed after it (every link is consistent again). The chain walk alone passed both;
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

/// Every chain's newest entry: (chain, link, hash hex), by chain.
async fn heads(pool: &PgPool) -> Vec<(i64, i64, String)> {
    let rows: Vec<(i16, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT DISTINCT ON (chain) chain, link, hash FROM audit_log ORDER BY chain, link DESC",
    )
    .fetch_all(pool)
    .await
    .expect("the heads");
    rows.into_iter()
        .map(|(c, l, h)| (i64::from(c), l, hex::encode(h)))
        .collect()
}

/// The heads a checkpoint file signs.
fn signed(cp: &Value) -> Vec<(i64, i64, String)> {
    cp["heads"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|h| {
                    let n = |k: &str| h[k].as_i64().unwrap_or(-1);
                    (
                        n("chain"),
                        n("link"),
                        h["hash"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
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
    // Enough audited transactions that one of the 16 chains holds 3 or more.
    for i in 0..40 {
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
    let now = heads(&pool).await;
    assert!(now.len() > 1, "entries on several chains: {now:?}");
    poll(
        Duration::from_secs(20),
        "a checkpoint of every chain's head",
        async || match checkpoint(&data) {
            Some(cp) if signed(&cp) == now => Ok(()),
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

    // 1. The database owner deletes the three newest entries of the longest
    // chain.
    let (chain, last, _) = now
        .iter()
        .max_by_key(|(_, link, _)| *link)
        .cloned()
        .expect("a chain");
    assert!(last >= 3, "chain {chain} has {last} entries");
    for sql in [
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update".to_owned(),
        format!(
            "CREATE TABLE audit_saved AS SELECT * FROM audit_log WHERE chain = {chain} AND link > {}",
            last - 3
        ),
        format!(
            "DELETE FROM audit_log WHERE chain = {chain} AND link > {}",
            last - 3
        ),
    ] {
        sqlx::query(&sql).execute(&pool).await.expect(&sql);
    }
    let (code, text) = verify(&url, &data);
    assert_eq!(code, 1, "truncated: {text}");
    assert!(
        text.contains("TAMPERED") && text.contains("truncated"),
        "{text}"
    );
    assert!(
        text.contains(&format!("chain {chain} ends at link {}", last - 3))
            && text.contains("3 newest entries removed"),
        "{text}"
    );
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
        signed(&cp),
        now,
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

    // 2. The owner edits that chain's second entry and re-hashes every entry
    // after it, so each link is consistent again.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(1690922233, $1::int)")
        .bind(chain)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET detail = 'nothing to see' WHERE chain = $1 AND link = 2")
        .bind(chain as i16)
        .execute(&mut *tx)
        .await
        .unwrap();
    for link in 2..=last {
        sqlx::query(
            "UPDATE audit_log a SET prev_hash = p.hash,
                 hash = audit_entry_hash(p.hash, a.seq, a.at, a.actor_id, a.actor, a.actor_kind,
                                         a.action, a.target, a.params, a.source, a.outcome, a.detail)
             FROM audit_log p
             WHERE p.chain = a.chain AND p.link = a.link - 1 AND a.chain = $1 AND a.link = $2",
        )
        .bind(chain as i16)
        .bind(link)
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
    assert!(text.contains(&format!("of chain {chain}")), "{text}");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let cp = checkpoint(&data).expect("the checkpoint");
    assert_eq!(signed(&cp), now, "the forged head was not signed: {cp}");

    // An edited checkpoint file is caught by its signature.
    let mut forged = cp.clone();
    forged["heads"][0]["link"] = json!(1);
    std::fs::write(data.join("audit-checkpoint.json"), forged.to_string()).unwrap();
    let (code, text) = verify(&url, &data);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("signature"), "{text}");
    p.stop().await;
}
