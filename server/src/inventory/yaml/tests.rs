//! Tests of the inventory YAML: parsing, rendering, round trips.

use super::render::is_plain_safe;
use super::*;

fn s(v: &str) -> String {
    v.to_owned()
}

fn rich() -> InventoryDoc {
    InventoryDoc {
        engines: vec![
            EngineDoc {
                name: "local".into(),
                endpoint: "unix:///var/run/docker.sock".into(),
                tls_ca: None,
                tls_cert: None,
                tls_key: None,
            },
            EngineDoc {
                name: "edge-1".into(),
                endpoint: "tcp://10.0.0.2:2376".into(),
                tls_ca: Some("/etc/opsdeck/ca.pem".into()),
                tls_cert: Some("/etc/opsdeck/cert.pem".into()),
                tls_key: Some("-----BEGIN KEY-----\nabc\n-----END KEY-----\n".into()),
            },
        ],
        services: vec![
            ServiceDoc {
                name: "gitea".into(),
                description:
                    "Git hosting.\nSecond line: with colon\n\n  indented # not a comment\n".into(),
                tier: "application".into(),
                owner_team: Some("platform".into()),
                docs_url: Some("https://docs.example.com/gitea?x=1#top".into()),
                repo_url: Some("https://git.example.com/ops/gitea".into()),
                engine: Some("local".into()),
                compose_project: Some("mosaic".into()),
                compose_service: Some("gitea".into()),
                container_name: Some("gitea".into()),
                image: Some("gitea/gitea:1.21".into()),
                ports: vec![s("3000:3000"), s("2222:22"), s("3000"), s("53:53/udp")],
                volumes: vec![s("gitea_data:/data"), s("./conf:/etc/x:ro")],
                labels: [
                    ("com.mosaic.role", "git"),
                    ("enabled", "yes"),
                    ("version", "1.0"),
                    ("nothing", ""),
                    ("weird key: with colon", "# hash"),
                    ("null", "null"),
                ]
                .into_iter()
                .map(|(k, v)| (s(k), s(v)))
                .collect(),
                requires: vec![s("mariadb"), s("redis")],
            },
            ServiceDoc {
                name: "mariadb".into(),
                tier: "critical".into(),
                engine: Some("edge-1".into()),
                ..ServiceDoc::default()
            },
            ServiceDoc {
                name: "redis".into(),
                description: "ünïcode — 日本語 🚀".into(),
                tier: "support".into(),
                ..ServiceDoc::default()
            },
            ServiceDoc {
                name: "0day".into(),
                description: "  leading and trailing spaces  ".into(),
                tier: "support".into(),
                owner_team: Some("".into()),
                ..ServiceDoc::default()
            },
        ],
    }
}

fn canonical(mut doc: InventoryDoc) -> InventoryDoc {
    doc.engines.sort_by(|a, b| a.name.cmp(&b.name));
    doc.services.sort_by(|a, b| a.name.cmp(&b.name));
    for s in &mut doc.services {
        s.requires.sort();
    }
    doc
}

fn err(text: &str) -> YamlError {
    match parse(text) {
        Ok(doc) => panic!("expected an error, got {doc:?}"),
        Err(e) => e,
    }
}

/// Asserts both halves of the round-trip guarantee for `doc`.
fn assert_round_trip(doc: &InventoryDoc) -> String {
    let text = render(doc);
    let parsed = match parse(&text) {
        Ok(p) => p,
        Err(e) => panic!("rendered text refused: {e}\n{text}"),
    };
    assert_eq!(parsed, canonical(doc.clone()), "\n{text}");
    assert_eq!(render(&parsed), text);
    // Our output is also plain YAML that any reader maps to the same strings.
    let value: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let json = serde_json::to_value(&value).unwrap();
    assert_eq!(json["version"], serde_json::json!(1));
    text
}

#[test]
fn rich_document_round_trips() {
    let doc = rich();
    let text = assert_round_trip(&doc);
    // Sorted, canonical layout.
    assert!(
        text.starts_with("version: 1\nengines:\n  - name: edge-1\n"),
        "{text}"
    );
    let services: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("  - name: "))
        .collect();
    assert_eq!(
        services,
        ["edge-1", "local", "\"0day\"", "gitea", "mariadb", "redis"]
    );
    // Omitted fields.
    let mariadb = text.split("  - name: mariadb\n").nth(1).unwrap();
    assert!(
        mariadb.starts_with("    tier: critical\n    engine: edge-1\n  - name: redis"),
        "{text}"
    );
}

#[test]
fn expected_rendering() {
    let doc = InventoryDoc {
        engines: vec![EngineDoc {
            name: "local".into(),
            endpoint: "unix:///var/run/docker.sock".into(),
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
        }],
        services: vec![
            ServiceDoc {
                name: "redis".into(),
                tier: "support".into(),
                ..ServiceDoc::default()
            },
            ServiceDoc {
                name: "gitea".into(),
                description: "Git hosting\nfor the team\n".into(),
                tier: "application".into(),
                engine: Some("local".into()),
                ports: vec![s("3000:3000")],
                labels: [(s("a.b"), s("true")), (s("c"), s(""))]
                    .into_iter()
                    .collect(),
                requires: vec![s("redis")],
                ..ServiceDoc::default()
            },
        ],
    };
    let expected = r#"version: 1
engines:
  - name: local
    endpoint: unix:///var/run/docker.sock
services:
  - name: gitea
    description: |
      Git hosting
      for the team
    tier: application
    engine: local
    ports:
      - "3000:3000"
    labels:
      a.b: "true"
      c: ""
    requires:
      - redis
  - name: redis
    tier: support
"#;
    assert_eq!(render(&doc), expected);
    assert_round_trip(&doc);
}

#[test]
fn empty_document() {
    let doc = InventoryDoc::default();
    assert_eq!(render(&doc), "version: 1\n");
    assert_eq!(parse("version: 1\n").unwrap(), doc);
    assert_eq!(parse("version: 1\nengines: []\nservices:\n").unwrap(), doc);
}

const TRICKY: &[&str] = &[
    "",
    " ",
    "yes",
    "Yes",
    "NO",
    "on",
    "off",
    "y",
    "n",
    "true",
    "False",
    "null",
    "Null",
    "~",
    "1",
    "1.0",
    "-1",
    "+1",
    "0x1F",
    "0o17",
    "012",
    "1e3",
    ".5",
    "1_000",
    "12:30",
    "2024-01-01",
    ".inf",
    "-.inf",
    ".nan",
    "nan",
    "inf",
    "a: b",
    "a:b",
    "a:",
    ":a",
    "# x",
    "a #b",
    "a#b",
    "- x",
    "-",
    "--",
    "---",
    "...",
    "? x",
    "?",
    "[x]",
    "{x: y}",
    "x, y",
    "*alias",
    "&anchor",
    "!tag",
    "!!str",
    "%YAML",
    "@x",
    "`x",
    "|",
    ">",
    "<<",
    "=",
    "'",
    "''",
    "\"",
    "\\",
    "\\n",
    "a\"b",
    "it's",
    "\t",
    "a\tb",
    "\r\n",
    "\n",
    "\n\n",
    "a\n",
    "a\n\n",
    "a\n\n\n",
    "\na",
    " a\nb",
    "a\n b",
    "a\nb",
    "a\n\nb",
    "a \n b ",
    "a\r\nb",
    "line1\nline2\n",
    "ünïcode",
    "日本語",
    "🚀",
    "é: x",
    "\u{0}",
    "\u{7}",
    "\u{1b}[0m",
    "\u{7f}",
    "\u{85}",
    "\u{a0}",
    "\u{2028}",
    "\u{2029}",
    "\u{feff}x",
    "\u{fffe}",
    "a\u{85}b",
    "trailing ",
    " leading",
    "a  b",
    "a\n# c\n",
    "a\n---\nb",
    "a\n...\n",
    "https://x.example/a?b=c&d#e",
    "unix:///var/run/docker.sock",
];

#[test]
fn tricky_strings_round_trip() {
    for (i, t) in TRICKY.iter().enumerate() {
        let doc = InventoryDoc {
            engines: vec![EngineDoc {
                name: "e".into(),
                endpoint: s(t),
                tls_ca: Some(s(t)),
                tls_cert: None,
                tls_key: None,
            }],
            services: vec![ServiceDoc {
                name: format!("s{i}"),
                description: s(t),
                tier: "support".into(),
                owner_team: Some(s(t)),
                image: Some(s(t)),
                ports: vec![s(t), s(t)],
                volumes: vec![s(t)],
                labels: [(s(t), s(t)), (format!("k{t}"), s(""))]
                    .into_iter()
                    .collect(),
                ..ServiceDoc::default()
            }],
        };
        assert_round_trip(&doc);
    }
}

#[test]
fn ambiguous_strings_are_quoted() {
    for t in [
        "yes",
        "No",
        "on",
        "null",
        "~",
        "1.0",
        "0x1F",
        "12:30",
        "a: b",
        "# x",
        "2024-01-01",
    ] {
        let doc = InventoryDoc {
            engines: vec![],
            services: vec![ServiceDoc {
                name: "a".into(),
                tier: "support".into(),
                image: Some(s(t)),
                ..ServiceDoc::default()
            }],
        };
        let text = render(&doc);
        let line = text.lines().find(|l| l.contains("image:")).unwrap();
        assert_eq!(
            line,
            format!("    image: {}", serde_json::to_string(t).unwrap())
        );
    }
}

/// Pseudo-random strings built from YAML-hostile pieces (fixed seed).
#[test]
fn generated_strings_round_trip() {
    const PIECES: &[&str] = &[
        "a", "Z", "0", "1", " ", "  ", "\n", ":", ": ", "#", " #", "-", "- ", "\"", "'", "\\",
        "\t", "\r", "{", "}", "[", "]", ",", "&", "*", "!", "|", ">", "%", "@", "`", "?", ".", "~",
        "ü", "🚀", "\u{85}", "\u{2028}", "\u{feff}", "\u{0}", "yes", "null", "true", "1.0", "0x1F",
        "<<", "---", "...", "=", "/",
    ];
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut strings = Vec::new();
    for _ in 0..3000 {
        let len = next(9);
        let piece_count = PIECES.len();
        let text: String = (0..len).map(|_| PIECES[next(piece_count)]).collect();
        strings.push(text);
    }
    for chunk in strings.chunks(50) {
        let doc = InventoryDoc {
            engines: vec![],
            services: chunk
                .iter()
                .enumerate()
                .map(|(i, t)| ServiceDoc {
                    name: format!("s{i:02}"),
                    description: t.clone(),
                    tier: "application".into(),
                    repo_url: Some(t.clone()),
                    volumes: vec![t.clone()],
                    labels: [(t.clone(), t.clone())].into_iter().collect(),
                    ..ServiceDoc::default()
                })
                .collect(),
        };
        assert_round_trip(&doc);
    }
}

#[test]
fn long_label_key_round_trips() {
    let doc = InventoryDoc {
        engines: vec![],
        services: vec![ServiceDoc {
            name: "a".into(),
            tier: "support".into(),
            labels: [
                ("k".repeat(1500), s("v")),
                ("é\"".repeat(600), "multi\nline\n".into()),
            ]
            .into_iter()
            .collect(),
            ..ServiceDoc::default()
        }],
    };
    let text = assert_round_trip(&doc);
    assert!(text.contains("      ? "), "{text}");
}

#[test]
fn unknown_key_refused_with_line() {
    let text = "version: 1\nservices:\n  - name: a\n    tier: support\n    owner: me\n";
    let e = err(text);
    assert_eq!(e.line, Some(5));
    assert_eq!(e.field.as_deref(), Some("services[0]"));
    assert!(e.message.contains("unknown field `owner`"), "{e}");
    assert!(
        e.to_string()
            .starts_with("line 5: services[0]: unknown field `owner`"),
        "{e}"
    );

    let e = err("version: 1\nservice: []\n");
    assert_eq!(e.line, Some(2));
    assert!(e.message.contains("unknown field `service`"), "{e}");

    let e = err("version: 1\nengines:\n  - name: a\n    endpoint: x\n    tls: true\n");
    assert_eq!(e.line, Some(5));
    assert_eq!(e.field.as_deref(), Some("engines[0]"));
}

#[test]
fn version_checked() {
    let e = err("version: 2\nservices: []\n");
    assert_eq!(e.field.as_deref(), Some("version"));
    assert_eq!(e.line, Some(1));
    assert!(e.message.contains("unsupported version 2"), "{e}");
    let e = err("services: []\n");
    assert_eq!(e.field.as_deref(), Some("version"));
    assert!(e.message.contains("missing `version: 1`"), "{e}");
    let e = err("version: \"1\"\n");
    assert_eq!(e.field.as_deref(), Some("version"));
    assert_eq!(e.line, Some(1));
    let e = err("");
    assert_eq!(e.field.as_deref(), Some("version"));
}

#[test]
fn tier_checked() {
    let e = err("version: 1\nservices:\n  - name: a\n    tier: important\n");
    assert_eq!(e.field.as_deref(), Some("services[0].tier"));
    assert_eq!(e.line, Some(4));
    assert!(e.message.contains("critical"), "{e}");
    let e = err("version: 1\nservices:\n  - name: a\n");
    assert!(e.message.contains("missing field `tier`"), "{e}");
    assert_eq!(e.field.as_deref(), Some("services[0]"));
}

#[test]
fn unknown_requires_refused() {
    let text = "version: 1\nservices:\n  - name: a\n    tier: support\n    requires:\n      - b\n  - name: b\n    tier: support\n    requires:\n      - a\n      - redis\n";
    let e = err(text);
    assert_eq!(e.field.as_deref(), Some("services[1].requires"));
    assert_eq!(e.line, Some(11));
    assert_eq!(
        e.to_string(),
        "line 11: services[1].requires: service \"b\" requires unknown service \"redis\""
    );
    // Cycles (a -> b -> a) are left to the graph module.
    assert!(parse(&text.replace("      - redis\n", "")).is_ok());
}

#[test]
fn self_and_repeated_requires_refused() {
    let e = err("version: 1\nservices:\n  - name: a\n    tier: support\n    requires: [a]\n");
    assert!(e.message.contains("requires itself"), "{e}");
    assert_eq!(e.line, Some(5));
    let e = err("version: 1\nservices:\n  - name: a\n    tier: support\n  - name: b\n    tier: support\n    requires: [a, a]\n");
    assert!(e.message.contains("twice"), "{e}");
    assert_eq!(e.field.as_deref(), Some("services[1].requires"));
}

#[test]
fn unknown_engine_refused() {
    let text = "version: 1\nengines:\n  - name: local\n    endpoint: unix:///var/run/docker.sock\nservices:\n  - name: a\n    tier: support\n    engine: remote\n";
    let e = err(text);
    assert_eq!(e.field.as_deref(), Some("services[0].engine"));
    assert_eq!(e.line, Some(8));
    assert!(e.message.contains("unknown engine \"remote\""), "{e}");
    assert!(parse(&text.replace("engine: remote", "engine: local")).is_ok());
}

#[test]
fn duplicate_names_refused() {
    let text = "version: 1\nservices:\n  - name: a\n    tier: support\n  - name: b\n    tier: support\n  - name: a\n    tier: critical\n";
    let e = err(text);
    assert_eq!(e.field.as_deref(), Some("services[2].name"));
    assert_eq!(e.line, Some(7));
    assert!(e.message.contains("duplicate service name \"a\""), "{e}");

    let text = "version: 1\nengines:\n  - name: x\n    endpoint: a\n  - name: x\n    endpoint: b\n";
    let e = err(text);
    assert_eq!(e.field.as_deref(), Some("engines[1].name"));
    assert_eq!(e.line, Some(5));
    assert!(e.message.contains("duplicate engine name \"x\""), "{e}");

    // Same name for an engine and a service is fine.
    assert!(parse("version: 1\nengines:\n  - name: x\n    endpoint: a\nservices:\n  - name: x\n    tier: support\n").is_ok());
}

#[test]
fn invalid_names_refused() {
    let e = err("version: 1\nservices:\n  - name: Gitea\n    tier: support\n");
    assert_eq!(e.field.as_deref(), Some("services[0].name"));
    assert_eq!(e.line, Some(3));
    assert!(e.message.contains("invalid service name \"Gitea\""), "{e}");
    let e = err("version: 1\nengines:\n  - endpoint: x\n    name: \"my engine\"\n");
    assert_eq!(e.field.as_deref(), Some("engines[0].name"));
    assert_eq!(e.line, Some(4));
}

#[test]
fn duplicate_keys_and_syntax_errors() {
    let e = err("version: 1\nservices:\n  - name: a\n    tier: support\n    tier: critical\n");
    assert!(e.message.contains("duplicate key \"tier\""), "{e}");
    assert_eq!(e.line, Some(5));
    let e = err("version: 1\nservices:\n  - name: a\n    labels:\n      x: 1\n      x: 2\n");
    assert_eq!(e.line, Some(6), "{e}");
    let e = err("version: 1\nservices:\n  - name: a\n   tier: support\n");
    assert_eq!(e.line, Some(4), "{e}");
    let e = err("version: 1\nservices:\n  - name: [a\n");
    assert!(e.line.is_some(), "{e}");
}

#[test]
fn parse_sorts_into_canonical_order() {
    let text = "version: 1\nservices:\n  - name: b\n    tier: support\n    requires: [c, a]\n  - name: a\n    tier: support\n  - name: c\n    tier: support\n";
    let doc = parse(text).unwrap();
    let names: Vec<&str> = doc.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(doc.services[1].requires, vec![s("a"), s("c")]);
    let rendered = render(&doc);
    assert_eq!(parse(&rendered).unwrap(), doc);
    assert_eq!(render(&parse(&rendered).unwrap()), rendered);
}

#[test]
fn plain_rules() {
    for t in [
        "gitea",
        "Git hosting for the team",
        "unix:///x",
        "/var/run",
        "a.b-c_d",
        "ünï",
        "a:b",
        "don't",
    ] {
        assert!(is_plain_safe(t), "{t:?}");
    }
    for t in [
        "",
        "1",
        "yes",
        "a: b",
        "a:",
        "a #b",
        "-a",
        ".inf",
        " a",
        "a ",
        "a\nb",
        "<<",
        "a=b",
        "1password",
    ] {
        assert!(!is_plain_safe(t), "{t:?}");
    }
}
