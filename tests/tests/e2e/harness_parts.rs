//! The harness parts for the health-check tests work as documented:
//! MariaDB with its check user, Redis with and without a password, the
//! misbehaving HTTP targets, the TLS target's certificate.

use std::str::FromStr;
use std::time::{Duration, Instant};

use opsdeck_e2e::mariadb::MariaDb;
use opsdeck_e2e::redis::{Conn, Redis, RedisOptions, Reply};
use opsdeck_e2e::targets::{Behaviour, Target};
use opsdeck_e2e::tlscert::TlsTarget;
use sqlx::mysql::MySqlConnectOptions;
use sqlx::{ConnectOptions, Connection};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_check_user_reads_global_status() {
    let Ok(db) = tokio::task::spawn_blocking(MariaDb::shared)
        .await
        .expect("starting MariaDB")
    else {
        return;
    };
    assert_eq!(
        db.url(),
        format!("mysql://opsdeck_check@127.0.0.1:{}/", db.port())
    );
    let opts = MySqlConnectOptions::from_str(&db.url()).expect("the URL parses");

    let mut conn = opts
        .clone()
        .password(db.password())
        .connect()
        .await
        .expect("the check user connects over TCP");
    let (name, value): (String, String) =
        sqlx::query_as("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
            .fetch_one(&mut conn)
            .await
            .expect("SHOW GLOBAL STATUS");
    assert_eq!(name, "Threads_connected");
    let threads: u64 = value.parse().expect("Threads_connected is a number");
    assert!(threads >= 1, "this connection counts: {threads}");
    conn.close().await.ok();

    let refused = opts.password("wrong").connect().await;
    assert!(refused.is_err(), "a wrong password is refused");
    assert!(db
        .sql_as_root("SELECT 1")
        .expect("root over the socket")
        .contains('1'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_requires_its_password() {
    let Ok(redis) = tokio::task::spawn_blocking(Redis::shared)
        .await
        .expect("starting Redis")
    else {
        return;
    };
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}/0", redis.port()));
    let pw = redis.password().expect("the shared server has a password");

    let mut conn = Conn::connect(redis.port()).await.expect("connecting");
    match conn.call(&[b"PING"]).await.expect("PING") {
        Reply::Error(e) => assert!(e.starts_with("NOAUTH"), "{e}"),
        other => panic!("PING without AUTH answered {other:?}"),
    }
    assert!(matches!(
        conn.call(&[b"AUTH", b"not-it"]).await.expect("AUTH"),
        Reply::Error(_)
    ));
    assert_eq!(
        conn.call(&[b"AUTH", pw.as_bytes()]).await.expect("AUTH"),
        Reply::Simple("OK".into())
    );
    assert_eq!(
        conn.call(&[b"PING"]).await.expect("PING"),
        Reply::Simple("PONG".into())
    );
    assert_eq!(redis.maxmemory_bytes(), 64 * 1024 * 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_fill_raises_memory_until_maxmemory() {
    let options = RedisOptions {
        password: None,
        maxmemory_mb: 16,
    };
    let Ok(redis) = tokio::task::spawn_blocking(move || Redis::start(options))
        .await
        .expect("starting Redis")
    else {
        return;
    };
    // No password: PING answers at once.
    let mut conn = Conn::connect(redis.port()).await.expect("connecting");
    assert_eq!(
        conn.call(&[b"PING"]).await.expect("PING"),
        Reply::Simple("PONG".into())
    );

    let before = redis.used_memory().await.expect("used_memory");
    redis.fill(4).await.expect("4 MiB fit under 16 MiB");
    let after = redis.used_memory().await.expect("used_memory");
    assert!(
        after >= before + 4 * 1024 * 1024,
        "used_memory {before} → {after}"
    );
    let err = redis.fill(32).await.expect_err("32 MiB more do not fit");
    assert!(format!("{err:#}").contains("OOM"), "{err:#}");
    redis.flush_all().await.expect("FLUSHALL");
    assert!(redis.used_memory().await.expect("used_memory") < after);

    let dir = redis.dir().to_owned();
    drop(redis);
    assert!(!dir.exists(), "the server's directory is removed on drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_behave_as_configured() {
    let target = Target::start(Behaviour::Ok("hello".into()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let url = target.url();

    let res = client.get(&url).send().await.expect("Ok");
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.expect("body"), "hello");
    let res = client.head(&url).send().await.expect("HEAD");
    assert_eq!(res.status(), 200);
    // The length of the body a GET would get, and no body.
    assert_eq!(res.headers()["content-length"], "5");
    assert_eq!(res.text().await.expect("no body"), "");

    target.set(Behaviour::Status(503));
    assert_eq!(client.get(&url).send().await.expect("Status").status(), 503);

    target.set(Behaviour::Slow(Duration::from_millis(400)));
    let started = Instant::now();
    let res = client.get(&url).send().await.expect("Slow");
    assert_eq!(res.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(400));

    target.set(Behaviour::Reset);
    let err = client.get(&url).send().await.expect_err("Reset");
    assert!(!err.is_timeout(), "a reset is not a timeout: {err:?}");

    target.set(Behaviour::Hang);
    let started = Instant::now();
    let err = client.get(&url).send().await.expect_err("Hang");
    assert!(err.is_timeout(), "a hang times out: {err:?}");
    assert!(started.elapsed() >= Duration::from_secs(1));

    target.set(Behaviour::Redirect("/elsewhere".into()));
    let res = client.get(&url).send().await.expect("Redirect");
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()["location"], "/elsewhere");

    target.set(Behaviour::Ok("back".into()));
    let res = client.get(&url).send().await.expect("Ok again");
    assert_eq!(res.text().await.expect("body"), "back");
    assert_eq!(target.hits(), 8);

    // A bare connect (a port check) is a connection, not a hit.
    let conns = target.connections();
    drop(
        tokio::net::TcpStream::connect(target.addr())
            .await
            .expect("connect"),
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while target.connections() == conns && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(target.connections(), conns + 1);
    assert_eq!(target.hits(), 8);

    let port = target.port();
    drop(target);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "a dropped target no longer listens"
    );
}

/// The peer certificate a client sees at `target`, and the response body.
async fn fetch_certificate(target: &TlsTarget) -> (Vec<u8>, String) {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .tls_info(true)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let res = client.get(target.url()).send().await.expect("HTTPS GET");
    assert_eq!(res.status(), 200);
    let der = res
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("the peer certificate")
        .to_vec();
    (der, res.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_target_serves_its_short_lived_certificate() {
    let target = TlsTarget::start(3);
    let (der, body) = fetch_certificate(&target).await;
    assert_eq!(body, "ok\n");
    assert_eq!(der, target.cert_der());
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("X.509");
    let validity = cert.validity();
    assert_eq!(
        validity.not_after.timestamp(),
        target.not_after().timestamp()
    );
    assert_eq!(
        validity.not_before.timestamp(),
        target.not_before().timestamp()
    );
    let left = target.not_after() - chrono::Utc::now();
    assert!(
        left > chrono::Duration::days(3) - chrono::Duration::minutes(1)
            && left <= chrono::Duration::days(3),
        "{left}"
    );

    // A client that trusts the certificate accepts it (127.0.0.1 is in it).
    let trusting = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(target.cert_pem().as_bytes()).expect("PEM"),
        )
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let res = trusting
        .get(target.url())
        .send()
        .await
        .expect("a trusted, valid certificate");
    assert_eq!(res.status(), 200);
    assert_eq!(target.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_target_can_serve_an_expired_certificate() {
    let target = TlsTarget::start(-2);
    assert!(target.not_after() < chrono::Utc::now());
    assert!(target.not_before() < target.not_after());
    let (der, _) = fetch_certificate(&target).await;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("X.509");
    assert_eq!(
        cert.validity().not_after.timestamp(),
        target.not_after().timestamp()
    );
    assert!(!cert.validity().is_valid());

    // Even trusted, an expired certificate is refused.
    let trusting = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(target.cert_pem().as_bytes()).expect("PEM"),
        )
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let err = trusting
        .get(target.url())
        .send()
        .await
        .expect_err("an expired certificate");
    assert!(err.is_connect() || err.is_request(), "{err:?}");
}

/// The test registry stores what the private engine pushes, and the broken
/// app version differs from the good one by its missing health page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_stores_pushed_app_versions() {
    use opsdeck_e2e::dockerd::PrivateDockerd;
    use opsdeck_e2e::registry::{AppImage, Registry};
    let Ok(engine) = tokio::task::spawn_blocking(PrivateDockerd::start)
        .await
        .expect("starting dockerd")
    else {
        return;
    };
    let Ok(registry) = tokio::task::spawn_blocking(Registry::start)
        .await
        .expect("starting the registry")
    else {
        return;
    };
    let (registry, engine, d1, d2) = tokio::task::spawn_blocking(move || {
        let v = |tag, broken| AppImage {
            repo: "harness/app",
            tag,
            version: tag,
            broken,
        };
        let (_, d1) = registry
            .push_app(&engine, &v("v1", false))
            .expect("push v1");
        let (_, d2) = registry.push_app(&engine, &v("v2", true)).expect("push v2");
        (registry, engine, d1, d2)
    })
    .await
    .expect("pushing");
    assert!(d1.starts_with("sha256:") && d2.starts_with("sha256:"));
    assert_ne!(d1, d2, "two versions, two manifests");
    let tags: serde_json::Value = reqwest::get(format!(
        "http://{}/v2/harness/app/tags/list",
        registry.host()
    ))
    .await
    .expect("tags list")
    .json()
    .await
    .expect("JSON");
    let mut tags: Vec<&str> = tags["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    tags.sort();
    assert_eq!(tags, ["v1", "v2"]);
    drop(engine);
}
