//! Data fixtures for the backup tests: databases on the shared test
//! cluster (created, reached over a loopback TCP forward, dropped), a
//! "ledger" database with awkward names and varied rows, row counts and
//! content digests to compare a restore with its source, and the files a
//! backup leaves (listing, SHA-256, `zstd -d`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor, PgConnection, PgPool};

static NEXT: AtomicU32 = AtomicU32::new(1);

/// A name unique in this test process (databases and roles are shared by
/// every test on the cluster).
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// The verification's scratch database is named after the backup id
/// (`opsdeck_verify_<id>_<idx>`) on the source's server; every test has
/// its own Opsdeck database whose ids start at 1, and the source databases
/// share one cluster, so each test's backup ids start elsewhere.
pub async fn backup_ids_from(pool: &PgPool, first: i64) {
    sqlx::query("SELECT setval('backups_id_seq', $1, false)")
        .bind(first)
        .execute(pool)
        .await
        .unwrap();
}

pub fn socket_dir() -> PathBuf {
    crate::pg::cluster_dir().join("run")
}

pub async fn cluster_conn(db: &str) -> PgConnection {
    PgConnection::connect(&crate::pg::url(db))
        .await
        .unwrap_or_else(|e| panic!("connecting to {db}: {e}"))
}

pub async fn create_db(pool: &PgPool, name: &str) {
    pool.execute(format!("CREATE DATABASE \"{name}\" TEMPLATE template0").as_str())
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
}

pub async fn drop_db(pool: &PgPool, name: &str) {
    let _ = pool
        .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
        .await;
}

/// Postgres checks refuse Unix sockets and the cluster listens on a socket
/// only: a loopback TCP port forwarding to it.
pub async fn tcp_to_cluster() -> u16 {
    let socket = socket_dir().join(".s.PGSQL.5432");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let socket = socket.clone();
            tokio::spawn(async move {
                if let Ok(mut unix) = tokio::net::UnixStream::connect(&socket).await {
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                }
            });
        }
    });
    port
}

/// Files below `root`, relative, sorted.
pub fn files_under(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The packaged Postgres tool (the cluster's version), else from PATH.
pub fn pg_tool(name: &str) -> PathBuf {
    let p = PathBuf::from(format!("/usr/lib/postgresql/15/bin/{name}"));
    if p.is_file() {
        p
    } else {
        PathBuf::from(name)
    }
}

/// `zstd -d` of a stored object (the CLI, argv).
pub async fn unzstd(path: &Path) -> Vec<u8> {
    let out = tokio::process::Command::new("zstd")
        .args(["-d", "-q", "-c"])
        .arg(path)
        .output()
        .await
        .expect("running zstd");
    assert!(
        out.status.success(),
        "zstd -d {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Row counts of every user table (`schema.table`), like the catalog's.
pub async fn row_counts(conn: &mut PgConnection) -> BTreeMap<String, i64> {
    let tables: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text, format('%I.%I', n.nspname, c.relname)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for (schema, table, quoted) in tables {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {quoted}"))
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        out.insert(format!("{schema}.{table}"), n);
    }
    out
}

/// A digest of a table's whole content (every row as text, in order).
pub async fn content_digest(conn: &mut PgConnection, quoted: &str) -> String {
    sqlx::query_scalar(&format!(
        "SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM {quoted} t"
    ))
    .fetch_one(&mut *conn)
    .await
    .unwrap()
}

/// The tables of the ledger database, quoted.
pub const LEDGER_TABLES: &[&str] = &[
    "public.customers",
    "shop.\"Order Items\"",
    "shop.events",
    "public.\"Weird \"\"Quoted\"\" Name\"",
    "public.empty_one",
];

/// A database with awkward names and a few thousand rows of varied text
/// and JSON; returns the row counts it must have.
pub async fn fill_ledger(conn: &mut PgConnection) -> BTreeMap<String, i64> {
    conn.execute(
        r#"
CREATE SCHEMA shop;
CREATE TABLE public.customers (
    id int PRIMARY KEY, name text NOT NULL, email text, since timestamptz NOT NULL);
INSERT INTO public.customers
SELECT g, 'Customer ' || g || ' «Ünïcødé» "q" \ ' || chr(10) || 'second line',
       CASE WHEN g % 7 = 0 THEN NULL ELSE 'c' || g || '@example.com' END,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour 7 seconds'
FROM generate_series(1, 250) g;
CREATE TABLE shop."Order Items" (
    id bigint PRIMARY KEY,
    customer int NOT NULL REFERENCES public.customers (id),
    "Line Note" text,
    payload jsonb NOT NULL,
    amount numeric(12, 2) NOT NULL);
INSERT INTO shop."Order Items"
SELECT g, 1 + g % 250,
       CASE WHEN g % 11 = 0 THEN NULL
            ELSE repeat(md5(g::text), 1 + g % 4) || E'\t' || chr(9731 + g % 50) || E'\n' || 'x''y' END,
       jsonb_build_object('sku', 'SKU-' || lpad(g::text, 6, '0'), 'qty', g % 9,
                          'tags', jsonb_build_array('t' || g % 5, g % 3 = 0),
                          'meta', jsonb_build_object('note', md5((g * 7)::text), 'ratio', g / 7.0)),
       round(g * 3.17, 2)
FROM generate_series(1, 3000) g;
CREATE TABLE shop.events (id bigserial PRIMARY KEY, at timestamptz NOT NULL, kind text NOT NULL, body jsonb);
INSERT INTO shop.events (at, kind, body)
SELECT timestamptz '2024-06-01 00:00:00+00' + g * interval '13 seconds',
       (ARRAY['login', 'logout', 'payment', 'refund'])[1 + g % 4],
       CASE WHEN g % 5 = 0 THEN NULL
            ELSE jsonb_build_object('ip', '10.0.' || g % 256 || '.' || g % 199, 'ua', md5(g::text) || ' Mozilla/5.0') END
FROM generate_series(1, 1234) g;
CREATE TABLE public."Weird ""Quoted"" Name" (k text PRIMARY KEY);
INSERT INTO public."Weird ""Quoted"" Name" SELECT 'key ' || g || ' ''' FROM generate_series(1, 7) g;
CREATE TABLE public.empty_one (x int);
"#,
    )
    .await
    .expect("filling the ledger database");
    [
        ("public.customers", 250),
        ("shop.Order Items", 3000),
        ("shop.events", 1234),
        ("public.Weird \"Quoted\" Name", 7),
        ("public.empty_one", 0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}
