//! An operator asks for a restore in headless Chromium.

use super::*;
use opsdeck_e2e::browser::screenshots;

/// In headless Chromium: an operator opens a backup, Restore… on the
/// database dump (none on the globals), restores into a new database: the
/// page links to the run, which waits for a colleague's approval. Over the
/// original, the request button stays disabled until the database's name
/// is typed; a second request while the first waits shows the server's
/// refusal in the dialog. The colleague approves: the new database holds
/// the backup. Screenshot: `target/screenshots/backup-restore.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_asks_for_a_restore_in_the_browser() {
    use opsdeck_e2e::browser::Browser;
    use opsdeck_e2e::server::PASSWORD;
    if opsdeck_e2e::server::spa().is_err() {
        return;
    }
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 8_300).await;
    let admin = s.user(Role::Admin).await;
    s.create_user("carol", Role::Operator).await;
    s.create_user("dave", Role::Operator).await;
    let carol = s.login("carol").await;
    let dave = s.login("dave").await;
    let db = unique("restore_ui");
    create_db(&s.pool, &db).await;
    let mut src = cluster_conn(&db).await;
    fill_ledger(&mut src).await;
    let original = digests(&mut src).await;
    cluster_service(&admin, "ledger", "opsdeck", &db).await;
    let tmp = tempfile::tempdir().unwrap();
    create_target(&admin, "local", &tmp.path().join("store")).await;
    let mut plan = postgres_plan("ledger-nightly", "ledger", &[&db], "local");
    plan["verify"] = json!(false);
    let plan = create_plan(&admin, plan).await;
    let r = finished(&carol, run_plan(&carol, plan.id).await).await;
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{}", run_text(&r));
    let id = backups(&carol, "").await[0].id;

    let Ok(b) = Browser::start().await else {
        return;
    };
    b.set_window_size(1400, 1000).await;
    b.sign_in(&s.url("/login"), "carol", PASSWORD).await;
    b.goto(&s.url(&format!("/backups/{id}"))).await;
    b.wait_for("[data-testid=artifact-1]").await;
    assert!(
        !b.exists("[data-testid=artifact-restore-0]").await,
        "the globals are not restored"
    );
    b.wait_for("[data-testid=artifact-restore-1]")
        .await
        .click()
        .await
        .expect("clicking Restore…");
    b.wait_for_contains("[data-testid=restore-dialog]", &db)
        .await;
    b.wait_for("[data-testid=restore-warning]").await;
    b.wait_for("[data-testid=restore-unverified]").await;
    b.wait_for("[data-testid=restore-into-new]")
        .await
        .click()
        .await
        .expect("choosing a new database");
    let copy = unique("restore_ui_copy");
    let name = b.wait_for("[data-testid=restore-new-name]").await;
    name.clear().await.expect("clearing the name");
    name.send_keys(&copy).await.expect("typing the name");
    b.wait_for("[data-testid=restore-stop-dependents]").await;
    b.screenshot(&screenshots().join("backup-restore.png"))
        .await;
    b.wait_for("[data-testid=restore-next]")
        .await
        .click()
        .await
        .expect("Continue");
    b.wait_for_contains("[data-testid=restore-summary]", &copy)
        .await;
    b.wait_for("[data-testid=restore-submit]")
        .await
        .click()
        .await
        .expect("requesting the restore");
    let link = b.wait_for("[data-testid=backup-restore-run]").await;
    let href = link.attr("href").await.unwrap().unwrap_or_default();
    let run: i64 = href
        .strip_prefix("/runs/")
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("a run link: {href}"));
    let ap = pending_approval(&carol, run).await;
    assert_eq!(ap.params.get("name"), Some(&json!(copy)));
    assert_eq!(ap.params.get("into"), Some(&json!("new")));
    assert_eq!(ap.params.get("stop_dependents"), Some(&json!("no")));

    // Over the original: the name must be typed; one restore at a time.
    b.wait_for("[data-testid=artifact-restore-1]")
        .await
        .click()
        .await
        .expect("clicking Restore… again");
    b.wait_for("[data-testid=restore-next]")
        .await
        .click()
        .await
        .expect("Continue");
    let submit = b.wait_for("[data-testid=restore-submit]").await;
    assert!(
        !submit.is_enabled().await.unwrap(),
        "disabled until the name is typed"
    );
    b.wait_for("[data-testid=restore-confirm-name]")
        .await
        .send_keys(&db)
        .await
        .expect("typing the database's name");
    poll(Duration::from_secs(10), "submit enabled", async || {
        if submit.is_enabled().await.map_err(|e| e.to_string())? {
            Ok(())
        } else {
            Err("still disabled".into())
        }
    })
    .await;
    submit.click().await.expect("requesting");
    b.wait_for_contains("[data-testid=restore-error]", "already running")
        .await;
    b.wait_for("[data-testid=restore-cancel]")
        .await
        .click()
        .await
        .expect("Cancel");
    b.close().await;

    // The colleague approves: the new database holds the backup.
    ok_json::<Approval>(approve(&dave, &ap).await, "dave approves").await;
    let r = finished(&carol, run).await;
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{}", run_text(&r));
    let mut c = cluster_conn(&copy).await;
    assert_eq!(digests(&mut c).await, original);
    c.close().await.ok();
    src.close().await.ok();
    drop_db(&s.pool, &copy).await;
    drop_db(&s.pool, &db).await;
}
