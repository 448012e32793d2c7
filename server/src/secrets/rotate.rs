//! `opsdeck secrets rotate`: a new key, every sealed value re-sealed with
//! it in ONE transaction (with the state row and an audit entry), so the
//! database is never half old, half new.
//!
//! Key file (decision): the new key is first written to
//! `secret.key.new` (mode 600, synced) — before the commit, so a committed
//! rotation always has its key on disk — then, after the commit, the old
//! file is renamed `secret.key.<old id>.bak` (kept: it opens backups of the
//! database taken before the rotation; delete it when those are gone) and
//! `secret.key.new` becomes `secret.key`. If the process stops between the
//! commit and the renames, the next start finishes them (see
//! [`super::startup`]). With `OPSDECK_SECRET_KEY` no file is touched: the
//! new key is printed once and must replace the variable's value before
//! the next start (the old value opens only older database backups).
//!
//! Running panels hold the old key in memory: stop every replica first.
//! The command refuses while another Opsdeck process is connected to the
//! database (`application_name = 'opsdeck'` in `pg_stat_activity`).

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use serde_json::json;
use sqlx::PgPool;

use super::startup::{self, Source, CHECK_ROW, CHECK_TEXT};
use super::{store, Field, Key};
use crate::audit::{self, Actor, NewEntry};
use crate::config::Settings;

/// Where a rotation puts the new key before its commit.
pub fn new_key_file(settings: &Settings) -> PathBuf {
    settings.data_dir.join("secret.key.new")
}

/// Renames after a committed rotation: the old key file (if `old` is
/// given) to `secret.key.<id>.bak`, `secret.key.new` to `secret.key`.
pub fn swap_key_files(settings: &Settings, old: Option<&Key>) -> anyhow::Result<()> {
    let current = startup::key_file(settings);
    if let Some(old) = old {
        let backup = settings
            .data_dir
            .join(format!("secret.key.{}.bak", old.id()));
        std::fs::rename(&current, &backup)
            .with_context(|| format!("keeping the old key as {}", backup.display()))?;
    }
    std::fs::rename(new_key_file(settings), &current)
        .with_context(|| format!("installing the new key as {}", current.display()))?;
    Ok(())
}

/// What a rotation did.
#[derive(Debug)]
pub struct Rotated {
    pub old_id: String,
    pub new_id: String,
    /// Sealed values rewritten.
    pub values: u64,
    /// The new key file, or `None` when the key is `OPSDECK_SECRET_KEY`.
    pub key_file: Option<PathBuf>,
    /// The old key file's backup.
    pub backup: Option<PathBuf>,
    /// The new key's text when it lives in `OPSDECK_SECRET_KEY` (to print).
    pub new_key_text: Option<String>,
}

/// Rotates the key (see the module documentation).
pub async fn rotate(pool: &PgPool, settings: &Settings) -> anyhow::Result<Rotated> {
    // Checks (and on a first start seals with) the current key.
    let old = startup::start(pool, settings).await?;
    let (_, source) =
        startup::load_key(settings)?.ok_or_else(|| anyhow!("no secrets key after start"))?;
    let others: i64 = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM pg_stat_activity
           WHERE application_name = 'opsdeck' AND datname = current_database()"#
    )
    .fetch_one(pool)
    .await?;
    // This command's own pool connects as `opsdeck` too: at most one here.
    if others > pool.size() as i64 {
        bail!(
            "another Opsdeck process is connected to this database: stop every replica \
             (they hold the old key) and run `opsdeck secrets rotate` again"
        );
    }
    let new = Key::generate();
    let file = matches!(source, Source::File(_));
    if file {
        let staged = new_key_file(settings);
        let _ = std::fs::remove_file(&staged);
        startup::write_key_file(&staged, &new)?;
    }
    let mut tx = pool.begin().await?;
    store::lock(&mut tx).await?;
    let (want, check) = store::state(&mut tx)
        .await?
        .ok_or_else(|| anyhow!("secrets are not sealed yet"))?;
    if want != old.id() || !startup::opens_check(&old, &check) {
        bail!("the database's secrets key changed while rotating; nothing was changed");
    }
    let values = store::walk(
        &mut tx,
        false,
        &mut |field: Field, row: &str, value: &[u8]| {
            let sealed = std::str::from_utf8(value)
                .map_err(|_| anyhow!("{} of {row} is not text", field.column()))?;
            let plain = old
                .open(field, row, sealed)
                .map_err(|e| anyhow!("{e} (row {row}); nothing was changed"))?;
            Ok(new.seal(field, row, &plain))
        },
    )
    .await?;
    let check = new.seal(Field::ServerKey, CHECK_ROW, CHECK_TEXT);
    store::update_state(&mut tx, new.id(), &check).await?;
    audit::record(
        &mut tx,
        NewEntry {
            actor: Actor::system("cli"),
            action: "secrets.rotate".into(),
            target: Some("secrets".into()),
            params: json!({ "old_key_id": old.id(), "new_key_id": new.id(), "values": values,
                            "key_source": if file { "file" } else { "env" } }),
            source: Some("cli".into()),
            outcome: opsdeck_wire::Outcome::Success,
            detail: None,
        },
    )
    .await?;
    tx.commit().await?;
    let (key_file, backup) = if file {
        swap_key_files(settings, Some(&old))?;
        (
            Some(startup::key_file(settings)),
            Some(
                settings
                    .data_dir
                    .join(format!("secret.key.{}.bak", old.id())),
            ),
        )
    } else {
        (None, None)
    };
    Ok(Rotated {
        old_id: old.id().to_owned(),
        new_id: new.id().to_owned(),
        values,
        key_file,
        backup,
        new_key_text: (!file).then(|| new.encode()),
    })
}
