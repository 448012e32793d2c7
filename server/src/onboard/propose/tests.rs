//! The proposal rules on hand-built compose services.

use super::*;

fn svc(image: &str, ports: &[&str]) -> ComposeService {
    ComposeService {
        image: Some(image.into()),
        ports: ports.iter().map(|p| (*p).to_owned()).collect(),
        ..ComposeService::default()
    }
}

fn argv(a: &[&str]) -> Option<Vec<String>> {
    Some(a.iter().map(|s| (*s).to_owned()).collect())
}

fn run(services: &[(&str, ComposeService)]) -> Vec<ProposedCheck> {
    let map = services
        .iter()
        .map(|(n, s)| ((*n).to_owned(), s.clone()))
        .collect();
    propose(&map, "127.0.0.1", &BTreeSet::new())
}

fn keys(p: &[ProposedCheck]) -> Vec<&str> {
    p.iter().map(|c| c.key.as_str()).collect()
}

fn url_of(c: &ProposedCheck) -> String {
    match &c.spec {
        CheckSpec::Http(h) => h.url.clone(),
        CheckSpec::Postgres(p) => p.url.clone(),
        CheckSpec::Mysql(m) => m.url.clone(),
        CheckSpec::Redis(r) => r.url.clone(),
        CheckSpec::Tls(t) => format!("{}:{}", t.host, t.port),
        other => panic!("no url: {other:?}"),
    }
}

#[test]
fn ports_parse_as_compose_writes_them() {
    let p = |s| published(s);
    assert_eq!(
        p("8080:80"),
        Some(Published {
            host_ip: None,
            published: 8080,
            target: 80
        })
    );
    assert_eq!(
        p("127.0.0.1:5432:5432").unwrap().host_ip.as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(p("0.0.0.0:443:443").unwrap().host_ip, None, "any address");
    assert_eq!(p("[::1]:8080:80").unwrap().host_ip.as_deref(), Some("::1"));
    assert_eq!(p("80"), None, "not published");
    assert_eq!(p("127.0.0.1::80"), None, "a random host port");
    assert_eq!(p("53:53/udp"), None);
    assert_eq!(p("8000-8010:8000-8010"), None, "ranges");
    assert_eq!(p("443:443/tcp").unwrap().published, 443);
}

#[test]
fn the_repository_is_the_last_path_part_without_tag_or_digest() {
    assert_eq!(image_repository("postgres:16"), "postgres");
    assert_eq!(
        image_repository("docker.io/library/postgres:16@sha256:abc"),
        "postgres"
    );
    assert_eq!(image_repository("localhost:5000/team/redis"), "redis");
    assert_eq!(
        image_repository("supabase/postgres-meta:v0.80"),
        "postgres-meta"
    );
    assert_eq!(
        image_repository("lscr.io/linuxserver/MariaDB:11"),
        "mariadb"
    );
}

#[test]
fn the_engine_host_comes_from_a_tcp_endpoint() {
    assert_eq!(engine_host(Some("tcp://10.0.0.5:2376")), "10.0.0.5");
    assert_eq!(engine_host(Some("https://docker.lan:2376")), "docker.lan");
    assert_eq!(
        engine_host(Some("unix:///var/run/docker.sock")),
        "127.0.0.1"
    );
    assert_eq!(engine_host(None), "127.0.0.1");
}

#[test]
fn healthcheck_urls_are_found_in_argv_and_shell_strings() {
    let u = healthcheck_url(
        &argv(&["CMD", "curl", "-f", "http://localhost:3000/api/healthz"]).unwrap(),
    );
    assert_eq!(u.unwrap().as_str(), "http://localhost:3000/api/healthz");
    let u = healthcheck_url(
        &argv(&[
            "CMD-SHELL",
            "wget -q --spider 'https://127.0.0.1:8443/ping?x=1' || exit 1",
        ])
        .unwrap(),
    );
    assert_eq!(u.unwrap().as_str(), "https://127.0.0.1:8443/ping?x=1");
    assert!(healthcheck_url(&argv(&["CMD", "pg_isready", "-U", "postgres"]).unwrap()).is_none());
}

#[test]
fn every_service_gets_a_container_check() {
    let p = run(&[
        ("worker", svc("acme/worker:1", &[])),
        ("job", ComposeService::default()),
    ]);
    assert_eq!(keys(&p), ["job/container", "worker/container"]);
    assert!(p.iter().all(|c| c.spec
        == CheckSpec::Container(opsdeck_wire::ContainerCheck {
            restarts_warning: 1,
            restarts_critical: 3
        })));
    assert!(p
        .iter()
        .all(|c| !c.needs_password && !c.exists && !c.selected));
}

#[test]
fn a_healthcheck_url_maps_to_its_published_port() {
    let mut gitea = svc("gitea/gitea:1.21", &["127.0.0.1:3001:3000", "2222:22"]);
    gitea.healthcheck = argv(&["CMD", "curl", "-fsS", "http://localhost:3000/api/healthz"]);
    let p = run(&[("gitea", gitea)]);
    assert_eq!(keys(&p), ["gitea/container", "gitea/http/3001"]);
    assert_eq!(url_of(&p[1]), "http://127.0.0.1:3001/api/healthz");
    assert!(p[1].reason.contains("healthcheck"), "{}", p[1].reason);
    let CheckSpec::Http(h) = &p[1].spec else {
        panic!()
    };
    assert_eq!((h.warning_ms, h.critical_ms), (1000, 3000), "wire defaults");
}

#[test]
fn a_healthcheck_on_an_unpublished_port_proposes_no_http_check() {
    let mut app = svc("acme/app", &["8080:8080"]);
    app.healthcheck = argv(&["CMD-SHELL", "wget -qO- http://localhost:9999/health"]);
    let p = run(&[("app", app)]);
    assert_eq!(
        keys(&p),
        ["app/container"],
        "the URL wins over the web port"
    );
}

#[test]
fn well_known_web_ports_get_http_and_https_gets_tls() {
    let p = run(&[(
        "proxy",
        svc("jc21/nginx-proxy-manager:2", &["80:80", "443:443", "81:81"]),
    )]);
    assert_eq!(
        keys(&p),
        [
            "proxy/container",
            "proxy/http/80",
            "proxy/http/443",
            "proxy/tls/443"
        ]
    );
    assert_eq!(url_of(&p[1]), "http://127.0.0.1:80/");
    assert_eq!(url_of(&p[2]), "https://127.0.0.1:443/");
    let CheckSpec::Http(h) = &p[2].spec else {
        panic!()
    };
    assert!(!h.tls_verify, "an address cannot match the certificate");
    let CheckSpec::Tls(t) = &p[3].spec else {
        panic!()
    };
    assert_eq!((t.warning_days, t.critical_days), (30, 7));
}

#[test]
fn an_https_healthcheck_gets_a_tls_check_on_any_port() {
    let mut s = svc("acme/api", &["10.1.2.3:9443:9443"]);
    s.healthcheck = argv(&["CMD", "curl", "-k", "https://localhost:9443/health"]);
    let p = run(&[("api", s)]);
    assert_eq!(keys(&p), ["api/container", "api/http/9443", "api/tls/9443"]);
    assert_eq!(
        url_of(&p[1]),
        "https://10.1.2.3:9443/health",
        "host_ip wins"
    );
    assert_eq!(url_of(&p[2]), "10.1.2.3:9443");
}

#[test]
fn databases_from_the_image_repository_with_user_and_db_from_the_environment() {
    let mut pg = svc("postgres:16", &["127.0.0.1:5433:5432"]);
    pg.db_env = BTreeMap::from([
        ("POSTGRES_USER".into(), "woodpecker".into()),
        ("POSTGRES_DB".into(), "ci db".into()),
    ]);
    let mut maria = svc("mariadb:11", &["3306:3306"]);
    maria.db_env = BTreeMap::from([("MYSQL_USER".into(), "gitea".into())]);
    let redis = svc("redis:7-alpine", &["6379:6379"]);
    let plain_pg = svc("postgres", &["5432:5432", "9187:9187"]);
    let p = run(&[
        ("db", pg),
        ("maria", maria),
        ("cache", redis),
        ("pg2", plain_pg),
    ]);
    assert_eq!(
        keys(&p),
        [
            "cache/container",
            "cache/redis",
            "db/container",
            "db/postgres",
            "maria/container",
            "maria/mysql",
            "pg2/container",
            "pg2/postgres"
        ]
    );
    let by = |k: &str| p.iter().find(|c| c.key == k).unwrap();
    assert_eq!(
        url_of(by("db/postgres")),
        "postgres://woodpecker@127.0.0.1:5433/ci%20db"
    );
    assert_eq!(
        url_of(by("pg2/postgres")),
        "postgres://postgres@127.0.0.1:5432/postgres"
    );
    assert_eq!(url_of(by("maria/mysql")), "mysql://gitea@127.0.0.1:3306/");
    assert_eq!(url_of(by("cache/redis")), "redis://127.0.0.1:6379");
    assert!(by("db/postgres").needs_password && by("maria/mysql").needs_password);
    assert!(!by("cache/redis").needs_password);
    // Every proposed spec passes the checks module's own validation.
    for c in &p {
        let mut s = c.spec.clone();
        crate::checks::validate_spec(&mut s).unwrap_or_else(|e| panic!("{}: {e}", c.key));
    }
}

#[test]
fn only_the_repository_names_a_database() {
    let p = run(&[
        (
            "postgres-meta",
            svc("supabase/postgres-meta:v0.80", &["8080:8080"]),
        ),
        (
            "exporter",
            svc("prometheuscommunity/postgres-exporter", &["9187:9187"]),
        ),
        ("db", svc("postgres:16", &[])),
    ]);
    assert_eq!(
        keys(&p),
        [
            "db/container",
            "exporter/container",
            "postgres-meta/container",
            "postgres-meta/http/8080"
        ],
        "no published port: no database check; no substring matches"
    );
}

#[test]
fn a_moved_database_port_is_found_when_it_is_the_only_one() {
    let p = run(&[("cache", svc("redis:7", &["127.0.0.1:18087:18087"]))]);
    assert_eq!(keys(&p), ["cache/container", "cache/redis"]);
    assert_eq!(url_of(&p[1]), "redis://127.0.0.1:18087");
}

#[test]
fn existing_kinds_are_marked_and_never_selected() {
    let map = BTreeMap::from([("web".to_owned(), svc("nginx", &["8080:80"]))]);
    let existing = BTreeSet::from([("web".to_owned(), "container".to_owned())]);
    let mut p = propose(&map, "127.0.0.1", &existing);
    assert_eq!(
        p.iter().map(|c| c.exists).collect::<Vec<_>>(),
        [true, false]
    );
    select(&mut p, None, &BTreeMap::new()).unwrap();
    assert_eq!(
        p.iter().map(|c| c.selected).collect::<Vec<_>>(),
        [false, true]
    );
    select(
        &mut p,
        Some(&["web/container".to_owned()]),
        &BTreeMap::new(),
    )
    .unwrap();
    assert!(p.iter().all(|c| !c.selected), "ticked or not, no duplicate");
}

#[test]
fn selection_defaults_and_explicit_lists() {
    let map = BTreeMap::from([
        ("db".to_owned(), svc("postgres:16", &["5432:5432"])),
        ("cache".to_owned(), svc("redis:7", &["6379:6379"])),
    ]);
    let mut p = propose(&map, "127.0.0.1", &BTreeSet::new());
    let selected = |p: &[ProposedCheck]| -> Vec<String> {
        p.iter()
            .filter(|c| c.selected)
            .map(|c| c.key.clone())
            .collect()
    };
    select(&mut p, None, &BTreeMap::new()).unwrap();
    assert_eq!(
        selected(&p),
        ["cache/container", "cache/redis", "db/container"]
    );
    let pw = BTreeMap::from([("db/postgres".to_owned(), "s3cret".to_owned())]);
    select(&mut p, None, &pw).unwrap();
    assert_eq!(
        selected(&p),
        [
            "cache/container",
            "cache/redis",
            "db/container",
            "db/postgres"
        ]
    );
    let only = ["db/postgres".to_owned(), "cache/container".to_owned()];
    select(&mut p, Some(&only), &BTreeMap::new()).unwrap();
    assert_eq!(
        selected(&p),
        ["cache/container", "db/postgres"],
        "ticked explicitly"
    );
    select(&mut p, Some(&[]), &BTreeMap::new()).unwrap();
    assert!(selected(&p).is_empty());

    let err = select(&mut p, Some(&["db/http/1".to_owned()]), &BTreeMap::new()).unwrap_err();
    assert!(err.starts_with("checks: "), "{err}");
    let bad = BTreeMap::from([("cache/redis".to_owned(), "x".to_owned())]);
    let err = select(&mut p, None, &bad).unwrap_err();
    assert!(err.starts_with("check_passwords.cache/redis: "), "{err}");
    let bad = BTreeMap::from([("nope".to_owned(), "x".to_owned())]);
    assert!(select(&mut p, None, &bad).is_err());
}
