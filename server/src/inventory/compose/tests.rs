//! Tests of the compose parser and the shared YAML plumbing.

use super::*;

/// A compose file modelled on the MosAIc stack.
const MOSAIC: &str = r#"version: "3.8"
name: mosaic

x-common: &common
  restart: unless-stopped
  labels: &common-labels
    com.mosaic.stack: core
    com.mosaic.managed: "true"

services:
  npm:
    image: jc21/nginx-proxy-manager:latest
    container_name: npm
    ports:
      - "80:80"
      - "443:443"
      - target: 81
        published: 8181
        host_ip: 127.0.0.1
    volumes:
      - npm_data:/data
      - ./letsencrypt:/etc/letsencrypt
      - ./conf:/etc/x:ro
    labels:
      - "com.mosaic.role=proxy"
      - "com.mosaic.public"
    environment:
      DB_PASSWORD: hunter2

  postgres:
    image: postgres:16
    ports:
      - "127.0.0.1:5432:5432"
    volumes:
      - type: volume
        source: pg_data
        target: /var/lib/postgresql/data
    environment:
      POSTGRES_PASSWORD: s3cret

  mariadb:
    image: mariadb:11
    volumes:
      - type: bind
        source: ./mariadb/conf
        target: /etc/mysql/conf.d
        read_only: true
      - type: volume
        target: /var/lib/mysql

  gitea:
    <<: *common
    image: gitea/gitea:1.21
    container_name: gitea
    depends_on:
      - mariadb
      - redis
    ports:
      - "3000:3000"
      - 2222:22
    volumes:
      - gitea_data:/data

  bookstack:
    image: lscr.io/linuxserver/bookstack
    depends_on:
      mariadb:
        condition: service_healthy
        restart: true
    labels:
      <<: *common-labels
      com.mosaic.role: wiki
      com.mosaic.port: 6875

  woodpecker-server:
    image: woodpeckerci/woodpecker-server:v2
    depends_on:
      - postgres
      - gitea
    ports:
      - target: 8000
        published: "8000"
      - target: 9000
    healthcheck:
      test: ["CMD", "/bin/woodpecker-server", "ping"]

  redis:
    image: redis:7-alpine
    ports:
      - target: 6379
        published: 6379
        protocol: tcp
      - target: 6380
        protocol: udp
    command: ["redis-server", "--appendonly", "yes"]

  mcp:
    build: ./mcp
    depends_on: [redis, redis]
    labels:
      com.mosaic.role: mcp
      empty:

  portainer:
    image: portainer/portainer-ce
    ports:
      - "9443:9443"
      - "53:53/udp"
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock
      - portainer_data:/data

volumes:
  npm_data:
  pg_data:
  gitea_data:
  portainer_data:
networks:
  default:
    name: mosaic
"#;

fn err(text: &str) -> ComposeError {
    match parse(text) {
        Ok(file) => panic!("expected an error, got {file:?}"),
        Err(e) => e,
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn mosaic_stack_field_by_field() {
    let file = parse(MOSAIC).unwrap();
    assert_eq!(file.name.as_deref(), Some("mosaic"));
    assert_eq!(
        file.services.keys().collect::<Vec<_>>(),
        vec![
            "bookstack",
            "gitea",
            "mariadb",
            "mcp",
            "npm",
            "portainer",
            "postgres",
            "redis",
            "woodpecker-server"
        ]
    );

    let npm = &file.services["npm"];
    assert_eq!(
        npm.image.as_deref(),
        Some("jc21/nginx-proxy-manager:latest")
    );
    assert_eq!(npm.container_name.as_deref(), Some("npm"));
    assert_eq!(
        npm.ports,
        strings(&["80:80", "443:443", "127.0.0.1:8181:81"])
    );
    assert_eq!(
        npm.volumes,
        strings(&[
            "npm_data:/data",
            "./letsencrypt:/etc/letsencrypt",
            "./conf:/etc/x:ro"
        ])
    );
    assert_eq!(
        npm.labels,
        labels(&[("com.mosaic.public", ""), ("com.mosaic.role", "proxy")])
    );
    assert!(npm.depends_on.is_empty());

    let postgres = &file.services["postgres"];
    assert_eq!(postgres.image.as_deref(), Some("postgres:16"));
    assert_eq!(postgres.container_name, None);
    assert_eq!(postgres.ports, strings(&["127.0.0.1:5432:5432"]));
    assert_eq!(
        postgres.volumes,
        strings(&["pg_data:/var/lib/postgresql/data"])
    );
    assert!(postgres.labels.is_empty());

    let mariadb = &file.services["mariadb"];
    assert_eq!(
        mariadb.volumes,
        strings(&["./mariadb/conf:/etc/mysql/conf.d:ro", "/var/lib/mysql"])
    );
    assert!(mariadb.ports.is_empty());

    let gitea = &file.services["gitea"];
    assert_eq!(gitea.image.as_deref(), Some("gitea/gitea:1.21"));
    assert_eq!(gitea.container_name.as_deref(), Some("gitea"));
    assert_eq!(gitea.depends_on, strings(&["mariadb", "redis"]));
    assert_eq!(gitea.ports, strings(&["3000:3000", "2222:22"]));
    assert_eq!(gitea.volumes, strings(&["gitea_data:/data"]));
    // Labels come from the `<<: *common` merge.
    assert_eq!(
        gitea.labels,
        labels(&[("com.mosaic.managed", "true"), ("com.mosaic.stack", "core")])
    );

    let bookstack = &file.services["bookstack"];
    assert_eq!(bookstack.depends_on, strings(&["mariadb"]));
    assert_eq!(
        bookstack.labels,
        labels(&[
            ("com.mosaic.managed", "true"),
            ("com.mosaic.port", "6875"),
            ("com.mosaic.role", "wiki"),
            ("com.mosaic.stack", "core"),
        ])
    );

    let woodpecker = &file.services["woodpecker-server"];
    assert_eq!(woodpecker.depends_on, strings(&["gitea", "postgres"]));
    assert_eq!(woodpecker.ports, strings(&["8000:8000", "9000"]));

    let redis = &file.services["redis"];
    assert_eq!(redis.ports, strings(&["6379:6379", "6380/udp"]));
    assert!(redis.depends_on.is_empty());

    let mcp = &file.services["mcp"];
    assert_eq!(mcp.image, None);
    assert_eq!(mcp.depends_on, strings(&["redis"]));
    assert_eq!(
        mcp.labels,
        labels(&[("com.mosaic.role", "mcp"), ("empty", "")])
    );

    let portainer = &file.services["portainer"];
    assert_eq!(portainer.ports, strings(&["9443:9443", "53:53/udp"]));
    assert_eq!(
        portainer.volumes,
        strings(&[
            "/var/run/docker.sock:/var/run/docker.sock",
            "portainer_data:/data"
        ])
    );
}

#[test]
fn environment_is_not_kept() {
    let file = parse(MOSAIC).unwrap();
    let debug = format!("{file:?}");
    assert!(!debug.contains("hunter2"));
    assert!(!debug.contains("s3cret"));
}

#[test]
fn malformed_yaml_reports_its_line() {
    let text = "services:\n  web:\n    image: nginx\n   ports: [\n";
    let e = err(text);
    assert_eq!(e.line, Some(4), "{e}");
    assert!(e.to_string().starts_with("line 4: "), "{e}");

    let text = "services:\n  web:\n    image: \"nginx\n    ports: []\n";
    let e = err(text);
    assert!(e.line.is_some(), "{e}");
}

#[test]
fn wrong_type_names_field_and_line() {
    let text = "services:\n  gitea:\n    ports:\n      - \"3000:3000\"\n      - [1, 2]\n";
    let e = err(text);
    assert_eq!(e.line, Some(5));
    assert_eq!(e.field.as_deref(), Some("services.gitea.ports[1]"));
    assert!(e.message.contains("expected a string or a mapping"), "{e}");
    assert!(
        e.to_string()
            .starts_with("line 5: services.gitea.ports[1]: invalid type: sequence"),
        "{e}"
    );
}

#[test]
fn unknown_dependency_names_field_and_line() {
    let text = "services:\n  gitea:\n    image: gitea/gitea\n  woodpecker:\n    image: w\n    depends_on:\n      - gitae\n";
    let e = err(text);
    assert_eq!(e.field.as_deref(), Some("services.woodpecker.depends_on"));
    assert_eq!(e.message, "unknown service \"gitae\"");
    assert_eq!(e.line, Some(7));
    assert_eq!(
        e.to_string(),
        "line 7: services.woodpecker.depends_on: unknown service \"gitae\""
    );

    // Long syntax and a flow list.
    let text = "services:\n  a:\n    depends_on:\n      b:\n        condition: service_started\n  c:\n    depends_on: [a, zz]\n";
    let e = err(text);
    assert_eq!(e.field.as_deref(), Some("services.a.depends_on"));
    assert_eq!(e.line, Some(4));
    let text = "services:\n  a:\n    image: x\n  c:\n    depends_on: [a, zz]\n";
    let e = err(text);
    assert_eq!(e.field.as_deref(), Some("services.c.depends_on"));
    assert_eq!(e.line, Some(5));
}

#[test]
fn self_dependency_refused() {
    let e = err("services:\n  a:\n    image: x\n    depends_on: [a]\n");
    assert_eq!(e.field.as_deref(), Some("services.a.depends_on"));
    assert!(e.message.contains("depends on itself"), "{e}");
    assert_eq!(e.line, Some(4));
}

#[test]
fn bad_condition_refused() {
    let e = err("services:\n  a:\n    image: x\n  b:\n    depends_on:\n      a:\n        condition: healthy\n");
    assert_eq!(
        e.field.as_deref(),
        Some("services.b.depends_on.a.condition")
    );
    assert_eq!(e.line, Some(7));
}

#[test]
fn duplicate_service_refused() {
    let text =
        "services:\n  gitea:\n    image: a\n  redis:\n    image: r\n  gitea:\n    image: b\n";
    let e = err(text);
    assert!(e.message.contains("duplicate key \"gitea\""), "{e}");
    assert_eq!(e.field.as_deref(), Some("services"));
    assert_eq!(e.line, Some(6));
}

#[test]
fn duplicate_keys_refused_everywhere() {
    // Inside a service, under an ignored key, and in a flow mapping.
    let e = err("services:\n  a:\n    image: x\n    ports: []\n    image: y\n");
    assert_eq!(e.line, Some(5), "{e}");
    assert_eq!(e.field.as_deref(), Some("services.a"));
    let e = err("services:\n  a:\n    environment:\n      A: 1\n      A: 2\n");
    assert_eq!(e.line, Some(5), "{e}");
    assert!(e.message.contains("\"A\""));
    let e = err("services:\n  a: {image: x, image: y}\n");
    assert!(e.message.contains("duplicate key \"image\""), "{e}");
    assert_eq!(e.line, Some(2));
    // Top level, with a sequence item mapping.
    let e = err("services:\n  a:\n    image: x\nservices:\n  b: {}\n");
    assert_eq!(e.line, Some(4), "{e}");
    let e = err("services:\n  a:\n    volumes:\n      - type: bind\n        target: /x\n        target: /y\n");
    assert_eq!(e.line, Some(6), "{e}");
}

#[test]
fn uppercase_service_name_refused() {
    let e = err("services:\n  web:\n    image: x\n  Gitea:\n    image: gitea/gitea\n");
    assert_eq!(e.field.as_deref(), Some("services.Gitea"));
    assert!(e.message.contains("invalid service name \"Gitea\""), "{e}");
    assert_eq!(e.line, Some(4));
}

#[test]
fn project_name_checked() {
    let e = err("name: My_Stack\nservices:\n  a:\n    image: x\n");
    assert_eq!(e.field.as_deref(), Some("name"));
    assert_eq!(e.line, Some(1));
    assert!(parse("name: my_stack-2\nservices:\n  a:\n    image: x\n").is_ok());
}

#[test]
fn name_rule() {
    assert!(is_valid_name("a"));
    assert!(is_valid_name("0"));
    assert!(is_valid_name("woodpecker-server.v2_x"));
    assert!(is_valid_name(&"a".repeat(63)));
    assert!(!is_valid_name(&"a".repeat(64)));
    assert!(!is_valid_name(""));
    assert!(!is_valid_name("-a"));
    assert!(!is_valid_name(".a"));
    assert!(!is_valid_name("a b"));
    assert!(!is_valid_name("aé"));
    assert!(!is_valid_name("A"));
}

#[test]
fn services_missing_or_empty_refused() {
    for text in [
        "version: '3'\n",
        "services: {}\n",
        "services:\n",
        "",
        "# only a comment\n",
    ] {
        let e = err(text);
        assert_eq!(e.field.as_deref(), Some("services"), "{text:?}: {e}");
        assert!(e.message.contains("non-empty `services`"), "{e}");
    }
    assert_eq!(err("version: '3'\nservices: {}\n").line, Some(2));
}

#[test]
fn top_level_must_be_a_mapping() {
    let e = err("- a\n- b\n");
    assert!(e.message.contains("expected a mapping"), "{e}");
    let e = err("just a string\n");
    assert!(e.message.contains("expected a mapping"), "{e}");
    let e = err("services:\n  a:\n    image: x\n---\nservices: {}\n");
    assert!(e.message.contains("more than one document"), "{e}");
}

#[test]
fn service_must_be_a_mapping() {
    let e = err("services:\n  a: nginx\n");
    assert_eq!(e.field.as_deref(), Some("services.a"));
    assert_eq!(e.line, Some(2));
    assert!(e.message.contains("expected a service definition"), "{e}");
    let e = err("services:\n  a:\n  b:\n    image: x\n");
    assert_eq!(e.field.as_deref(), Some("services.a"));
    assert!(e.message.contains("expected a service definition"), "{e}");
}

#[test]
fn long_port_with_host_ip() {
    let text = "services:\n  a:\n    ports:\n      - target: 80\n        published: 8080\n        host_ip: 127.0.0.1\n      - target: 53\n        published: 5353\n        host_ip: 0.0.0.0\n        protocol: udp\n      - target: 80\n        published: 8081\n        host_ip: \"::1\"\n      - target: 80\n        host_ip: 10.0.0.1\n      - target: 443\n        published: 8443-8444\n        mode: host\n        name: https\n        app_protocol: https\n      - 3000\n      - target: \"8080\"\n        protocol: TCP\n";
    let file = parse(text).unwrap();
    assert_eq!(
        file.services["a"].ports,
        strings(&[
            "127.0.0.1:8080:80",
            "0.0.0.0:5353:53/udp",
            "[::1]:8081:80",
            "10.0.0.1::80",
            "8443-8444:443",
            "3000",
            "8080",
        ])
    );
}

#[test]
fn long_syntax_typos_refused() {
    let e = err("services:\n  a:\n    ports:\n      - target: 80\n        publised: 8080\n");
    assert_eq!(e.field.as_deref(), Some("services.a.ports[0]"));
    assert!(e.message.contains("unknown field `publised`"), "{e}");
    assert_eq!(e.line, Some(5));
    let e = err("services:\n  a:\n    ports:\n      - published: 8080\n");
    assert!(e.message.contains("missing field `target`"), "{e}");
    let e = err("services:\n  a:\n    volumes:\n      - source: x\n        target: /y\n        readonly: true\n");
    assert!(e.message.contains("unknown field `readonly`"), "{e}");
}

#[test]
fn label_forms() {
    let text = "services:\n  a:\n    labels:\n      traefik.enable: true\n      weight: 1.5\n      n: 3\n      s: \"x=y\"\n  b:\n    labels:\n      - a=b=c\n      - flag\n      - empty=\n";
    let file = parse(text).unwrap();
    assert_eq!(
        file.services["a"].labels,
        labels(&[
            ("n", "3"),
            ("s", "x=y"),
            ("traefik.enable", "true"),
            ("weight", "1.5")
        ])
    );
    assert_eq!(
        file.services["b"].labels,
        labels(&[("a", "b=c"), ("empty", ""), ("flag", "")])
    );
    let e = err("services:\n  a:\n    labels:\n      - x=1\n      - x=2\n");
    assert!(e.message.contains("duplicate label \"x\""), "{e}");
    assert_eq!(e.field.as_deref(), Some("services.a.labels"));
}

#[test]
fn merge_keys_applied_with_yaml_precedence() {
    let text = r#"x-labels:
  a: &a-labels {one: a}
  b: &b-labels {one: b, two: b}
x-a: &a
  image: from-a
  container_name: ca
  labels: {one: a}
x-b: &b
  image: from-b
  ports: ["1:1"]
  labels: {one: b, two: b}
x-nested: &nested
  <<: *b
  volumes: [v:/v]
services:
  own-wins:
    <<: *a
    image: own
  list-order:
    <<: [*a, *b]
  nested:
    <<: *nested
  label-merge:
    labels:
      <<: [*a-labels, *b-labels]
      three: own
"#;
    let file = parse(text).unwrap();
    let own = &file.services["own-wins"];
    assert_eq!(own.image.as_deref(), Some("own"));
    assert_eq!(own.container_name.as_deref(), Some("ca"));
    let list = &file.services["list-order"];
    assert_eq!(list.image.as_deref(), Some("from-a"));
    assert_eq!(list.ports, strings(&["1:1"]));
    // Per-key merge: labels come whole from the first mapping that has them.
    assert_eq!(list.labels, labels(&[("one", "a")]));
    let nested = &file.services["nested"];
    assert_eq!(nested.image.as_deref(), Some("from-b"));
    assert_eq!(nested.volumes, strings(&["v:/v"]));
    let lm = &file.services["label-merge"];
    assert_eq!(
        lm.labels,
        labels(&[("one", "a"), ("three", "own"), ("two", "b")])
    );
}

#[test]
fn merge_keys_elsewhere_refused_clearly() {
    let e = err("x: &x\n  a: {image: x}\nservices:\n  <<: *x\n");
    assert!(e.message.contains("merge keys"), "{e}");
    assert_eq!(e.line, Some(4));
    let e =
        err("x: &x\n  a: {}\nservices:\n  a:\n    image: x\n  b:\n    depends_on:\n      <<: *x\n");
    assert!(e.message.contains("merge keys"), "{e}");
    assert_eq!(e.field.as_deref(), Some("services.b.depends_on"));
}

#[test]
fn unknown_keys_ignored() {
    let text = "version: '3'\nsecrets:\n  s:\n    file: ./s\nconfigs: {}\nx-foo: 1\nservices:\n  a:\n    image: x\n    restart: always\n    networks: [n]\n    build:\n      context: .\n    command: run\n";
    let file = parse(text).unwrap();
    assert_eq!(
        file.services["a"],
        ComposeService {
            image: Some("x".into()),
            ..ComposeService::default()
        }
    );
    assert_eq!(file.name, None);
}

#[test]
fn error_display_forms() {
    let e = ComposeError::new("m".into(), None, None);
    assert_eq!(e.to_string(), "m");
    let e = ComposeError::new("m".into(), Some(3), None);
    assert_eq!(e.to_string(), "line 3: m");
    let e = ComposeError::new("m".into(), None, Some("f".into()));
    assert_eq!(e.to_string(), "f: m");
}

#[test]
fn find_line_stays_in_block() {
    let text = "services:\n  a:\n    image: x\n  b:\n    depends_on: [zz]\n";
    assert_eq!(
        find_line(
            text,
            &[Step::Key("services"), Step::Key("a"), Step::Text("zz")]
        ),
        None
    );
    assert_eq!(
        find_line(
            text,
            &[Step::Key("services"), Step::Key("b"), Step::Text("zz")]
        ),
        Some(5)
    );
    let list = "services:\n- name: a\n  requires: [b]\n- name: b\n  requires:\n  - c\n";
    assert_eq!(
        find_line(
            list,
            &[
                Step::Key("services"),
                Step::Entry("name", "b"),
                Step::Key("requires"),
                Step::Text("c")
            ]
        ),
        Some(6)
    );
    assert_eq!(
        find_line(
            list,
            &[
                Step::Key("services"),
                Step::Entry("name", "a"),
                Step::Text("c")
            ]
        ),
        None
    );
    let nested = "services:\n  woodpecker:\n    depends_on:\n      gitea:\n        condition: service_started\n  gitea:\n    depends_on: [nope]\n";
    assert_eq!(
        find_line(
            nested,
            &[
                Step::Key("services"),
                Step::Key("gitea"),
                Step::Text("nope")
            ]
        ),
        Some(7)
    );
    let dup = "x:\n  - name: a\n  - name: \"b\"\n  - name: 'b'\n";
    assert_eq!(
        find_line(dup, &[Step::Key("x"), Step::NthEntry("name", "b", 2)]),
        Some(4)
    );
    assert!(contains_word("  - [redis-cache, redis]", "redis"));
    assert!(!contains_word("  - redis-cache", "redis"));
    assert!(!contains_word("  - my.redis", "redis"));
}
