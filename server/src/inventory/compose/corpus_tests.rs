//! The compose corpus (`tests/compose/<case>/` at the repository root):
//! each case is a hand-written project with its expected normalised model
//! in `expected.json` (or `{"error": "…"}` when loading must fail) and its
//! options in an optional `case.json` (`files`, `env_files`, `profiles`,
//! `environment`), as `docker compose -f … --env-file … --profile …` takes
//! them.
//!
//! `corpus_matches_expected` loads every case with [`load`] and compares.
//! `reference_matches_expected` runs the reference `docker compose` v2
//! (`docker-compose config --format json`, argv, no shell) on every case
//! and compares its output, normalised the same way, with the same file:
//! the two tests together show Opsdeck's model equals compose's. The binary
//! is `$OPSDECK_DOCKER_COMPOSE` or `~/.cache/opsdeck/tools/bin/docker-compose`
//! (scripts/install-test-deps.sh installs it); when it is missing the test
//! fails under `CI=true` and says so loudly elsewhere.
//!
//! The normalised model, and where compose's output is mapped to it:
//! * ports as `host_ip:published:target/protocol` (empty parts left empty);
//! * volumes as `source:target[:ro]` (`target` alone for anonymous volumes
//!   and tmpfs); compose's absolute bind sources are made relative to the
//!   project directory (`./conf`), as Opsdeck keeps them;
//! * compose writes a literal `$` as `$$` in its output: unescaped;
//! * `depends_on` as sorted names; compose keeps a `required: false`
//!   dependency on a service outside the active profiles, Opsdeck drops it
//!   (the service is not imported), so such names are dropped from
//!   compose's list too;
//! * inactive services: compose leaves them out; they are taken from a
//!   second run with `--profile '*'` (every service) minus the active ones.
//!
//! Set `OPSDECK_COMPOSE_BLESS=1` to (re)write `expected.json` from the
//! reference binary; review the diff before committing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Map, Value as Json};

use super::*;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/compose")
}

#[derive(serde::Deserialize, Default)]
struct CaseOptions {
    #[serde(default)]
    files: Vec<String>,
    #[serde(default)]
    env_files: Vec<String>,
    #[serde(default)]
    profiles: Vec<String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
}

fn cases() -> Vec<(String, PathBuf, CaseOptions)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(corpus_dir()).expect("tests/compose exists") {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let opts = match std::fs::read_to_string(dir.join("case.json")) {
            Ok(t) => serde_json::from_str(&t).expect("case.json"),
            Err(_) => CaseOptions::default(),
        };
        out.push((name, dir, opts));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 10, "the corpus has its cases");
    out
}

/// Every file of a case (but the test's own), by relative path.
fn case_files(dir: &Path, rel: &str, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir.join(rel))
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if e.path().is_dir() {
            case_files(dir, &path, out);
        } else if !matches!(path.as_str(), "case.json" | "expected.json") {
            out.push((path, std::fs::read_to_string(e.path()).unwrap()));
        }
    }
}

fn expected(dir: &Path) -> Json {
    let text = std::fs::read_to_string(dir.join("expected.json"))
        .unwrap_or_else(|_| panic!("{}: expected.json is missing", dir.display()));
    serde_json::from_str(&text).unwrap()
}

/// Splits an Opsdeck port string into the normalised form.
fn norm_port(p: &str) -> String {
    let (rest, proto) = p.rsplit_once('/').unwrap_or((p, "tcp"));
    let (host, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let (ip, r) = r.split_once("]:").unwrap();
            (ip.to_owned(), r.to_owned())
        }
        None => {
            let parts: Vec<&str> = rest.split(':').collect();
            match parts.len() {
                3 => (parts[0].to_owned(), format!("{}:{}", parts[1], parts[2])),
                _ => (String::new(), rest.to_owned()),
            }
        }
    };
    let (published, target) = rest.rsplit_once(':').unwrap_or(("", &rest));
    format!("{host}:{published}:{target}/{proto}")
}

fn norm_volume(v: &str) -> String {
    let parts: Vec<&str> = v.split(':').collect();
    match parts.as_slice() {
        [target] => (*target).to_owned(),
        [source, target] => format!("{source}:{target}"),
        [source, target, mode, ..] => {
            let ro = mode.split(',').any(|m| m == "ro");
            format!("{source}:{target}{}", if ro { ":ro" } else { "" })
        }
        [] => String::new(),
    }
}

fn service_json(s: &ComposeService) -> Json {
    json!({
        "image": s.image,
        "depends_on": s.depends_on,
        "ports": s.ports.iter().map(|p| norm_port(p)).collect::<Vec<_>>(),
        "volumes": s.volumes.iter().map(|v| norm_volume(v)).collect::<Vec<_>>(),
        "labels": s.labels,
        "profiles": s.profiles,
    })
}

/// Opsdeck's model of a case, normalised.
fn ours(name: &str, dir: &Path, opts: &CaseOptions) -> Result<Json, String> {
    let mut files = Vec::new();
    case_files(dir, "", &mut files);
    let src = Sources {
        files,
        compose_files: opts.files.clone(),
        env_files: opts.env_files.clone(),
        profiles: opts.profiles.clone(),
        directory: Some(name.to_owned()),
        environment: opts.environment.clone(),
    };
    let loaded = load(&src).map_err(|e| e.to_string())?;
    let services: Map<String, Json> = loaded
        .file
        .services
        .iter()
        .map(|(n, s)| (n.clone(), service_json(s)))
        .collect();
    let inactive: Map<String, Json> = loaded
        .inactive
        .iter()
        .map(|(n, p)| (n.clone(), json!(p)))
        .collect();
    Ok(json!({
        "project": loaded.project.map(|p| p.0),
        "services": services,
        "inactive": inactive,
    }))
}

fn check(name: &str, got: Result<Json, String>, want: &Json, who: &str) -> Option<String> {
    match (got, want.get("error").and_then(Json::as_str)) {
        (Ok(got), None) if &got == want => None,
        (Ok(got), None) => Some(format!(
            "{name}: {who} differs from expected.json\n  got:  {got}\n  want: {want}"
        )),
        (Ok(got), Some(e)) => Some(format!(
            "{name}: {who} loaded ({got}), expected the error {e:?}"
        )),
        (Err(msg), Some(e)) if who == "reference" || msg.contains(e) => None,
        (Err(msg), _) => Some(format!("{name}: {who} failed: {msg}")),
    }
}

#[test]
fn corpus_matches_expected() {
    if std::env::var("OPSDECK_COMPOSE_BLESS").as_deref() == Ok("1") {
        // `reference_matches_expected` is rewriting the files.
        return;
    }
    let mut failures = Vec::new();
    for (name, dir, opts) in cases() {
        let want = expected(&dir);
        failures.extend(check(&name, ours(&name, &dir, &opts), &want, "opsdeck"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn reference_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("OPSDECK_DOCKER_COMPOSE") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var("HOME").ok()?;
    let p = Path::new(&home).join(".cache/opsdeck/tools/bin/docker-compose");
    p.exists().then_some(p)
}

/// `docker-compose config --format json` of a case.
fn reference_config(
    bin: &Path,
    dir: &Path,
    opts: &CaseOptions,
    profiles: &[String],
) -> Result<Json, String> {
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .envs(&opts.environment)
        .arg("--project-directory")
        .arg(dir);
    for f in &opts.files {
        cmd.arg("-f").arg(dir.join(f));
    }
    for f in &opts.env_files {
        cmd.arg("--env-file").arg(dir.join(f));
    }
    for p in profiles {
        cmd.arg("--profile").arg(p);
    }
    cmd.args(["config", "--format", "json"]);
    let out = cmd
        .output()
        .map_err(|e| format!("running {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

fn unescape(s: &str) -> String {
    s.replace("$$", "$")
}

/// compose's output in the normalised model.
fn theirs(bin: &Path, dir: &Path, opts: &CaseOptions) -> Result<Json, String> {
    let active = reference_config(bin, dir, opts, &opts.profiles)?;
    let all = reference_config(bin, dir, opts, &["*".to_owned()])?;
    let root = dir.canonicalize().unwrap();
    let relative = |p: &str| -> String {
        let path = Path::new(p);
        match path.strip_prefix(&root) {
            Ok(r) => format!("./{}", r.display()),
            Err(_) => match path.strip_prefix(root.parent().unwrap()) {
                Ok(r) => format!("../{}", r.display()),
                Err(_) => p.to_owned(),
            },
        }
    };
    let empty = Map::new();
    let services = active["services"].as_object().unwrap_or(&empty);
    let mut out = Map::new();
    for (name, s) in services {
        let text = |v: &Json| v.as_str().map(unescape).unwrap_or_else(|| v.to_string());
        let mut deps: Vec<String> = s["depends_on"]
            .as_object()
            .map(|m| {
                m.keys()
                    .filter(|d| services.contains_key(*d))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        deps.sort();
        let ports: Vec<String> = s["ports"]
            .as_array()
            .unwrap_or(&vec![])
            .iter()
            .map(|p| {
                format!(
                    "{}:{}:{}/{}",
                    p["host_ip"].as_str().unwrap_or(""),
                    p["published"].as_str().unwrap_or(""),
                    p["target"],
                    p["protocol"].as_str().unwrap_or("tcp")
                )
            })
            .collect();
        let volumes: Vec<String> = s["volumes"]
            .as_array()
            .unwrap_or(&vec![])
            .iter()
            .map(|v| {
                let target = text(&v["target"]);
                let source = match (v["type"].as_str(), v["source"].as_str()) {
                    (Some("bind"), Some(src)) => relative(src),
                    (_, Some(src)) if !src.is_empty() => src.to_owned(),
                    _ => return target,
                };
                let ro = if v["read_only"] == json!(true) {
                    ":ro"
                } else {
                    ""
                };
                format!("{source}:{target}{ro}")
            })
            .collect();
        let labels: Map<String, Json> = s["labels"]
            .as_object()
            .unwrap_or(&empty)
            .iter()
            .map(|(k, v)| (k.clone(), json!(text(v))))
            .collect();
        let profiles: Vec<String> = s["profiles"]
            .as_array()
            .unwrap_or(&vec![])
            .iter()
            .map(text)
            .collect();
        out.insert(
            name.clone(),
            json!({
                "image": s["image"].as_str().map(unescape),
                "depends_on": deps,
                "ports": ports,
                "volumes": volumes,
                "labels": labels,
                "profiles": profiles,
            }),
        );
    }
    let inactive: Map<String, Json> = all["services"]
        .as_object()
        .unwrap_or(&empty)
        .iter()
        .filter(|(n, _)| !services.contains_key(*n))
        .map(|(n, s)| {
            (
                n.clone(),
                json!(s["profiles"]
                    .as_array()
                    .unwrap_or(&vec![])
                    .iter()
                    .map(text_of)
                    .collect::<Vec<_>>()),
            )
        })
        .collect();
    Ok(json!({
        "project": active["name"],
        "services": out,
        "inactive": inactive,
    }))
}

fn text_of(v: &Json) -> String {
    v.as_str().map(unescape).unwrap_or_else(|| v.to_string())
}

#[test]
fn reference_matches_expected() {
    let Some(bin) = reference_binary() else {
        let msg = "the reference docker-compose v2 binary is missing: run scripts/install-test-deps.sh \
                   (or set OPSDECK_DOCKER_COMPOSE); the agreement with `docker compose config` is NOT checked";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("\n!!!!!!!! {msg} !!!!!!!!\n");
        return;
    };
    let bless = std::env::var("OPSDECK_COMPOSE_BLESS").as_deref() == Ok("1");
    let mut failures = Vec::new();
    for (name, dir, opts) in cases() {
        let got = theirs(&bin, &dir, &opts);
        if bless {
            if let Ok(model) = &got {
                let text = serde_json::to_string_pretty(model).unwrap() + "\n";
                std::fs::write(dir.join("expected.json"), text).unwrap();
            }
            continue;
        }
        failures.extend(check(&name, got, &expected(&dir), "reference"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
