//! The mapping of rules files to checks.

use opsdeck_wire::FiringLevel;

use super::*;

const URL: &str = "http://prometheus:9090";

fn run(yaml: &str) -> Mapped {
    map(
        yaml,
        &Options {
            url: URL,
            tls_verify: true,
            attach_label: "service",
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn by_key<'a>(m: &'a Mapped, key: &str) -> &'a Proposal {
    m.proposals
        .iter()
        .find(|p| p.key == key)
        .unwrap_or_else(|| panic!("no proposal {key}: {:?}", m.proposals))
}

const HANDBOOK: &str = r#"
groups:
  - name: wiki
    interval: 1m
    rules:
      - alert: WikiErrorRate
        expr: sum(rate(http_requests_total{job="wiki",code=~"5.."}[5m])) / sum(rate(http_requests_total{job="wiki"}[5m])) > 0.01
        for: 5m
        labels:
          severity: warning
          service: wiki
        annotations:
          summary: "Error rate {{ $value | humanizePercentage }} on {{ $labels.instance }}"
      - alert: WikiErrorRate
        expr: |
          sum(rate(http_requests_total{job="wiki",code=~"5.."}[5m]))
            / sum(rate(http_requests_total{job="wiki"}[5m])) > 0.05
        for: 5m
        labels:
          severity: critical
          service: wiki
      - alert: WikiDown
        expr: up{job="wiki"} == 0
        for: 1m
        labels:
          severity: page
      - record: job:http_requests:rate5m
        expr: sum by (job) (rate(http_requests_total[5m]))
"#;

#[test]
fn a_warning_and_a_critical_rule_on_one_expression_become_one_check() {
    let m = run(HANDBOOK);
    assert_eq!((m.groups, m.alerting_rules), (1, 3));
    assert_eq!(m.proposals.len(), 2, "{:?}", m.proposals);
    let p = by_key(&m, "wiki/WikiErrorRate");
    assert_eq!(p.name, "WikiErrorRate");
    assert_eq!(p.alerts, ["WikiErrorRate", "WikiErrorRate"]);
    assert_eq!(
        p.spec.query,
        r#"sum(rate(http_requests_total{job="wiki",code=~"5.."}[5m])) / sum(rate(http_requests_total{job="wiki"}[5m]))"#
    );
    assert_eq!((p.spec.warning, p.spec.critical), (0.01, 0.05));
    assert!(!p.spec.below);
    assert_eq!(p.spec.firing, None);
    assert_eq!(p.spec.sustained_s, 300);
    assert_eq!(p.interval_s, 60);
    assert_eq!(p.spec.url, URL);
    assert_eq!(p.label_value.as_deref(), Some("wiki"));
    assert!(
        p.notes[0].starts_with("merged: warning ≥ 0.01"),
        "{:?}",
        p.notes
    );
    assert!(p.notes.iter().any(|n| n.contains("include the value")));
}

#[test]
fn a_complex_expression_fires_on_any_series_at_its_severity() {
    let m = run(HANDBOOK);
    let p = by_key(&m, "wiki/WikiDown");
    assert_eq!(p.spec.query, r#"up{job="wiki"} == 0"#);
    assert_eq!(
        p.spec.firing,
        Some(FiringLevel::Critical),
        "page is critical"
    );
    assert_eq!(p.spec.sustained_s, 60);
    // No `service` label: none matched (the attach label could be `job`).
    assert_eq!(p.label_value, None);
    assert!(p.notes.iter().any(|n| n.contains("not a comparison")));
    let job = map(
        HANDBOOK,
        &Options {
            url: URL,
            tls_verify: false,
            attach_label: "job",
        },
    )
    .unwrap();
    let p = by_key(&job, "wiki/WikiDown");
    assert_eq!(p.label_value.as_deref(), Some("wiki"), "from the matcher");
    assert!(!p.spec.tls_verify);
}

#[test]
fn recording_rules_and_annotations_are_listed_never_dropped() {
    let m = run(HANDBOOK);
    let rec = m
        .unsupported
        .iter()
        .find(|n| n.rule == "job:http_requests:rate5m")
        .expect("the recording rule is listed");
    assert!(rec.reason.starts_with("recording rule"), "{}", rec.reason);
    assert_eq!(rec.key, None);
    let ann = m
        .unsupported
        .iter()
        .find(|n| n.reason.starts_with("annotation summary"))
        .expect("the templated annotation is listed");
    assert!(ann.reason.contains("{{ $value | humanizePercentage }}"));
    assert!(ann.reason.contains("templated"));
    assert_eq!(ann.key.as_deref(), Some("wiki/WikiErrorRate"));
    // `severity` and the attach label are used; nothing else was there.
    assert!(!m.unsupported.iter().any(|n| n.reason.starts_with("labels")));
}

#[test]
fn lower_is_worse_merges_with_below() {
    let m = run(r#"
groups:
  - name: disk
    rules:
      - alert: DiskLow
        expr: node_filesystem_avail_bytes / node_filesystem_size_bytes < 0.2
        labels: {severity: warn}
      - alert: DiskVeryLow
        expr: node_filesystem_avail_bytes/node_filesystem_size_bytes <= 0.1
        for: 10m
        labels: {severity: critical}
"#);
    assert_eq!(m.proposals.len(), 1, "{:?}", m.proposals);
    let p = &m.proposals[0];
    assert_eq!(p.key, "disk/DiskLow");
    assert_eq!(p.name, "DiskLow / DiskVeryLow");
    assert!(p.spec.below);
    assert_eq!((p.spec.warning, p.spec.critical), (0.2, 0.1));
    assert_eq!(p.interval_s, DEFAULT_INTERVAL_S);
    assert_eq!(p.spec.sustained_s, 0, "the shorter for");
    assert!(p.notes.iter().any(|n| n.contains("for differ")));
}

#[test]
fn pairs_that_cannot_merge_stay_apart() {
    let m = run(r#"
groups:
  - name: g
    rules:
      - alert: Load
        expr: node_load1 > 8
        labels: {severity: warning}
      - alert: Load
        expr: node_load1 > 4
        labels: {severity: critical}
      - alert: Queue
        expr: queue_length > 100
        labels: {severity: warning}
"#);
    // Warning above critical: two checks of one severity each, kept whole.
    assert_eq!(m.proposals.len(), 3);
    let w = by_key(&m, "g/Load/warning");
    assert_eq!(w.spec.query, "node_load1 > 8");
    assert_eq!(w.spec.firing, Some(FiringLevel::Warning));
    assert_eq!(w.name, "Load (warning)");
    let c = by_key(&m, "g/Load/critical");
    assert_eq!(c.spec.firing, Some(FiringLevel::Critical));
    assert!(c.notes.iter().any(|n| n.contains("repeats")));
    let q = by_key(&m, "g/Queue");
    assert_eq!(q.spec.firing, Some(FiringLevel::Warning));
    assert!(q.notes[0].starts_with("warning only"), "{:?}", q.notes);
}

#[test]
fn severities_map_with_a_note_when_guessed() {
    assert_eq!(severity(Some("Critical")), (FiringLevel::Critical, None));
    assert_eq!(severity(Some("page")).0, FiringLevel::Critical);
    assert_eq!(severity(Some("info")), (FiringLevel::Warning, None));
    assert_eq!(severity(Some("minor")).0, FiringLevel::Warning);
    let (l, n) = severity(None);
    assert_eq!(l, FiringLevel::Critical);
    assert!(n.unwrap().contains("no severity"));
    let (l, n) = severity(Some("sev9"));
    assert_eq!(l, FiringLevel::Critical);
    assert!(n.unwrap().contains("sev9"));
}

#[test]
fn for_durations_and_what_has_no_place_in_a_check() {
    let m = run(r#"
groups:
  - name: g
    interval: 15s
    limit: 10
    query_offset: 1m
    rules:
      - alert: A
        expr: x > 1
        for: 1h30m
        keep_firing_for: 10m
        labels: {severity: warning, team: ops}
        annotations: {runbook_url: "https://wiki/runbooks/a"}
      - alert: B
        expr: y > 1
        for: 2d
      - alert: C
        expr: z > 1
        for: five minutes
      - alert: D
        expr: w > 1
        for: 500ms
        mystery: 1
      - alert: E
"#);
    let a = by_key(&m, "g/A");
    assert_eq!(a.spec.sustained_s, 5400);
    assert_eq!(a.interval_s, 15);
    assert_eq!(by_key(&m, "g/B").spec.sustained_s, 86_400);
    assert_eq!(by_key(&m, "g/D").spec.sustained_s, 1, "500 ms rounds up");
    assert!(m.proposals.iter().all(|p| p.key != "g/C" && p.key != "g/E"));
    let reasons: Vec<(&str, &str)> = m
        .unsupported
        .iter()
        .map(|n| (n.rule.as_str(), n.reason.as_str()))
        .collect();
    let has = |rule: &str, start: &str| {
        assert!(
            reasons
                .iter()
                .any(|(r, s)| *r == rule && s.starts_with(start)),
            "{rule}: {start} in {reasons:?}"
        )
    };
    has("(group)", "limit 10");
    has("(group)", "query_offset 1m");
    has("A", "keep_firing_for 10m");
    has("A", "labels team=\"ops\"");
    has("A", "annotation runbook_url");
    has("B", "for 2d");
    has("C", "for \"five minutes\" is not a Prometheus duration");
    has("D", "unknown rule key mystery");
    has("E", "no expr");
    assert_eq!(m.alerting_rules, 5);
}

#[test]
fn bad_yaml_is_refused_with_its_place() {
    let opts = Options {
        url: URL,
        tls_verify: true,
        attach_label: "service",
    };
    let e = map("groups:\n  - name: a\n    rules: [\n", &opts).unwrap_err();
    assert!(e.starts_with("yaml: line "), "{e}");
    assert!(e.contains("column"), "{e}");
    let e = map("groups:\n  - name: x\n\tbad: 1\n", &opts).unwrap_err();
    assert!(e.starts_with("yaml: line 3"), "{e}");
    assert!(map("", &opts).unwrap_err().contains("empty"));
    assert!(map("- 1\n", &opts).unwrap_err().contains("mapping"));
    assert!(map("foo: 1\n", &opts).unwrap_err().contains("no groups"));
    let e = map("groups:\n  - name: a\n  - name: a\n", &opts).unwrap_err();
    assert!(e.contains("repeats"), "{e}");
    let e = map("groups:\n  - rules: []\n", &opts).unwrap_err();
    assert!(e.contains("needs a name"), "{e}");
}

#[test]
fn a_prometheus_rule_resource_reads_its_spec() {
    let m = run(r#"
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: api}
spec:
  groups:
    - name: api
      rules:
        - alert: ApiDown
          expr: absent(up{job="api"})
          labels: {severity: critical, service: api}
"#);
    let p = by_key(&m, "api/ApiDown");
    assert_eq!(p.label_value.as_deref(), Some("api"));
    assert_eq!(p.spec.firing, Some(FiringLevel::Critical));
    assert!(m.unsupported.is_empty(), "{:?}", m.unsupported);
}
