//! One ephemeral Postgres cluster per test run, a database per test.
//!
//! The cluster is started by the server's own [`opsdeck::embedded_pg`] code
//! in a temporary directory, on a dedicated thread that lives as long as the
//! test process: the postmaster gets SIGINT when the process exits. A
//! migrated template database makes each test's `CREATE DATABASE` cheap.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor};

struct Cluster {
    options: PgConnectOptions,
    url_base: String,
    dir: PathBuf,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static NEXT: AtomicU32 = AtomicU32::new(1);
const TEMPLATE: &str = "opsdeck_template";

/// Removes the cluster directories of earlier test runs whose process is
/// gone (the cluster dies with its test process; its files stay behind and
/// fill the disk over many local runs).
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("opsdeck-test-pg-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn cluster() -> &'static Cluster {
    let result = CLUSTER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("test-postgres".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    remove_stale_clusters();
                    let dir = std::env::temp_dir()
                        .join(format!("opsdeck-test-pg-{}", std::process::id()));
                    let _ = std::fs::remove_dir_all(&dir);
                    match opsdeck::embedded_pg::EmbeddedPg::start(&dir, None).await {
                        Ok(pg) => {
                            let setup = async {
                                let mut conn = pg.connect_options().connect().await?;
                                conn.execute(format!("CREATE DATABASE {TEMPLATE}").as_str())
                                    .await?;
                                conn.close().await?;
                                let opts = pg.connect_options().database(TEMPLATE);
                                let pool = opsdeck::db::pool(opts).await?;
                                opsdeck::db::migrate(&pool).await?;
                                pool.close().await;
                                anyhow::Ok(())
                            };
                            let res = setup.await.map(|_| Cluster {
                                options: pg.connect_options(),
                                url_base: pg.url("__DB__"),
                                dir: dir.clone(),
                            });
                            let _ = tx.send(res.map_err(|e| format!("{e:#}")));
                            // Keep the cluster (and this thread) alive for the whole run.
                            let _keep = pg;
                            std::future::pending::<()>().await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(format!("{e:#}")));
                        }
                    }
                });
            })
            .expect("spawning the Postgres thread");
        rx.recv()
            .unwrap_or_else(|_| Err("the Postgres thread died".into()))
    });
    match result {
        Ok(c) => c,
        Err(e) => panic!("cannot start the test Postgres cluster: {e}"),
    }
}

/// A fresh, migrated database; returns its name and connection options.
pub async fn fresh_database() -> (String, PgConnectOptions) {
    let c = cluster();
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let mut conn = c
        .options
        .clone()
        .connect()
        .await
        .expect("connecting to the test cluster");
    conn.execute(format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}").as_str())
        .await
        .expect("creating a test database");
    conn.close().await.ok();
    let opts = c.options.clone().database(&name);
    (name, opts)
}

/// `postgres://` URL of a database in the test cluster.
pub fn url(database: &str) -> String {
    cluster().url_base.replace("__DB__", database)
}

/// The cluster's directory (for tests that look at its files).
pub fn cluster_dir() -> PathBuf {
    cluster().dir.clone()
}
