//! Tests of [`load`]: errors keep the file and line, defaults, project
//! names. The constructs themselves are covered by the corpus
//! (`corpus_tests`).

use super::*;

fn src(files: &[(&str, &str)]) -> Sources {
    Sources {
        files: files
            .iter()
            .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
            .collect(),
        ..Sources::default()
    }
}

fn load_err(s: &Sources) -> ComposeError {
    match load(s) {
        Ok(l) => panic!("expected an error, loaded {l:?}"),
        Err(e) => e,
    }
}

#[test]
fn errors_name_the_file_and_line() {
    // Unknown dependency written in the second file.
    let mut s = src(&[
        ("compose.yaml", "services:\n  web:\n    image: nginx\n"),
        (
            "prod.yml",
            "services:\n  web:\n    labels: {a: b}\n    depends_on:\n      - db\n",
        ),
    ]);
    s.compose_files = vec!["compose.yaml".into(), "prod.yml".into()];
    let e = load_err(&s);
    assert_eq!(e.file.as_deref(), Some("prod.yml"));
    assert_eq!(e.line, Some(5));
    assert_eq!(
        e.to_string(),
        "prod.yml: line 5: services.web.depends_on: unknown service \"db\""
    );

    // Duplicate key in an included file.
    let s = src(&[
        (
            "compose.yaml",
            "include: [sub/c.yml]\nservices:\n  a:\n    image: x\n",
        ),
        ("sub/c.yml", "services:\n  b:\n    image: x\n    image: y\n"),
    ]);
    let e = load_err(&s);
    assert_eq!((e.file.as_deref(), e.line), (Some("sub/c.yml"), Some(4)));
    assert!(e.message.contains("duplicate key"), "{e}");

    // Interpolation error with its field.
    let s = src(&[(
        "compose.yaml",
        "services:\n  a:\n    image: x\n    labels:\n      l: ${NEED:?please}\n",
    )]);
    let e = load_err(&s);
    assert_eq!(
        e.to_string(),
        "compose.yaml: line 5: services.a.labels.l: required variable NEED is missing a value: please"
    );

    // A bad line in the env file.
    let s = src(&[
        ("compose.yaml", "services:\n  a:\n    image: x\n"),
        (".env", "A=1\nB=\"open\n"),
    ]);
    let e = load_err(&s);
    assert_eq!((e.file.as_deref(), e.line), (Some(".env"), Some(2)));

    // A service defined twice across an include.
    let s = src(&[
        (
            "compose.yaml",
            "include: [sub/c.yml]\nservices:\n  a:\n    image: x\n",
        ),
        ("sub/c.yml", "services:\n  a:\n    image: y\n"),
    ]);
    let e = load_err(&s);
    assert_eq!(e.file.as_deref(), Some("compose.yaml"));
    assert!(
        e.message
            .contains("defined both here and in the included sub/c.yml"),
        "{e}"
    );

    // The old parser's refusals still hold after the merge.
    let s = src(&[("compose.yaml", "services:\n  Web:\n    image: x\n")]);
    assert!(load_err(&s).message.contains("invalid service name"));
    let s = src(&[(
        "compose.yaml",
        "services:\n  a:\n    image: x\n    ports:\n      - target: 80\n        publised: 8080\n",
    )]);
    let e = load_err(&s);
    assert!(e.message.contains("publised"), "{e}");
    assert_eq!(e.file.as_deref(), Some("compose.yaml"));
}

#[test]
fn defaults_and_missing_files() {
    let e = load_err(&src(&[("other.yaml", "services: {a: {image: x}}\n")]));
    assert!(e.message.starts_with("no compose file"), "{e}");
    let mut s = src(&[(
        "compose.yaml",
        "services: {a: {extends: {file: base.yml, service: b}}}\n",
    )]);
    assert!(load_err(&s)
        .message
        .contains("\"base.yml\" is not among the files given"));
    s.files.push((
        "base.yml".into(),
        "services: {b: {image: busybox}}\n".into(),
    ));
    let l = load(&s).unwrap();
    assert_eq!(l.files, vec!["compose.yaml", "base.yml"]);
    assert_eq!(l.file.services["a"].image.as_deref(), Some("busybox"));
    // compose.yaml wins over docker-compose.yml; its override is picked up.
    let l = load(&src(&[
        ("docker-compose.yml", "services: {old: {image: x}}\n"),
        ("compose.yaml", "services: {new: {image: x}}\n"),
        ("compose.override.yml", "services: {new: {image: y}}\n"),
    ]))
    .unwrap();
    assert_eq!(l.files, vec!["compose.yaml", "compose.override.yml"]);
    assert_eq!(l.file.services["new"].image.as_deref(), Some("y"));
}

#[test]
fn project_name_sources_and_environment() {
    let mut s = src(&[(
        "compose.yaml",
        "name: fromfile\nservices: {a: {image: x}}\n",
    )]);
    s.directory = Some("Some Dir".into());
    assert_eq!(load(&s).unwrap().project, Some(("fromfile".into(), "name")));
    s.environment
        .insert("COMPOSE_PROJECT_NAME".into(), "fromenv".into());
    assert_eq!(
        load(&s).unwrap().project,
        Some(("fromenv".into(), "COMPOSE_PROJECT_NAME"))
    );
    let mut s = src(&[
        ("compose.yaml", "services: {a: {image: \"x:${T}\"}}\n"),
        (".env", "T=file\n"),
    ]);
    s.directory = Some("/srv/_-My.Stack 2".into());
    let l = load(&s).unwrap();
    assert_eq!(l.project, Some(("mystack2".into(), "directory")));
    assert_eq!(l.file.services["a"].image.as_deref(), Some("x:file"));
    // The caller's environment wins over the env file.
    s.environment.insert("T".into(), "env".into());
    assert_eq!(
        load(&s).unwrap().file.services["a"].image.as_deref(),
        Some("x:env")
    );
    assert_eq!(normalize_project_name("__Foo-Bar_1.x"), "foo-bar_1x");
}

#[test]
fn healthcheck_profiles_and_db_env_filled() {
    let l = load(&src(&[(
        "compose.yaml",
        "services:\n  db:\n    image: postgres:16\n    profiles: [db]\n    environment:\n      POSTGRES_USER: app\n      POSTGRES_PASSWORD: secret\n      POSTGRES_DB: appdb\n    healthcheck:\n      test: pg_isready -U app\n      interval: 5s\n  web:\n    image: nginx\n    environment: [MYSQL_USER=u, MYSQL_PASSWORD=p]\n    healthcheck:\n      test: [\"CMD\", \"curl\", \"-f\", \"http://localhost/\"]\n  off:\n    image: x\n    healthcheck: {disable: true}\n",
    )]))
    .unwrap();
    assert_eq!(l.inactive, vec![("db".to_owned(), vec!["db".to_owned()])]);
    let web = &l.file.services["web"];
    assert_eq!(
        web.healthcheck.as_deref(),
        Some(&["CMD", "curl", "-f", "http://localhost/"].map(String::from)[..])
    );
    assert_eq!(web.db_env.len(), 1);
    assert_eq!(l.file.services["off"].healthcheck, None);
    let mut s = src(&[(
        "compose.yaml",
        "services:\n  db:\n    image: postgres:16\n    profiles: [db]\n    environment:\n      POSTGRES_USER: app\n      POSTGRES_PASSWORD: secret\n    healthcheck:\n      test: pg_isready -U app\n",
    )]);
    s.profiles = vec!["db".into()];
    let db = &load(&s).unwrap().file.services["db"];
    assert_eq!(db.profiles, vec!["db"]);
    assert_eq!(db.db_env.keys().collect::<Vec<_>>(), vec!["POSTGRES_USER"]);
    assert_eq!(
        db.healthcheck.as_deref(),
        Some(&["CMD-SHELL", "pg_isready -U app"].map(String::from)[..])
    );
}
