//! A Prometheus rules file as Prometheus-query checks (issue 21): the pure
//! reading and mapping here, the preview and the one-transaction apply in
//! [`import`], the scanner and duration reader in [`expr`]. The rules are
//! in `docs/metrics/rules-import.md`; in short:
//!
//! - The file is `groups` → `rules` as Prometheus reads it (or a
//!   Kubernetes `PrometheusRule`'s `spec.groups`). Each **alerting rule**
//!   (`alert`, `expr`, `for`, `labels`, `annotations`) becomes a
//!   Prometheus-query check named after the alert; its `for` is the
//!   check's sustain time (`sustained_s`, at most 1 day), the group's
//!   `interval` its interval (else 30 s).
//! - **Severity**: `labels.severity` `critical`, `page`, `high`, `error`,
//!   `p1`, `p2` → critical; `warning`, `warn`, `medium`, `low`, `info`,
//!   `minor`, `notice`, `p3`, `p4` → warning; missing or another value →
//!   critical, with a note (an alert pages unless it says otherwise).
//! - **Thresholds**: a warning and a critical rule of one group whose
//!   expressions are the same `<lhs> <op> <number>` (`op` one of `>`,
//!   `>=`, `<`, `<=` in the same direction, see [`expr::split_comparison`])
//!   merge into **one** check on `lhs` with both thresholds (`<`/`<=`:
//!   `below`) — the handbooks' "error rate 1 % warning / 5 % critical".
//!   Opsdeck's thresholds include the value itself (`≥`).
//! - **Any series** (`firing`): every other alerting rule keeps its whole
//!   expression and fires at its severity while the expression returns a
//!   series, exactly as Prometheus evaluates it (a single-severity
//!   comparison too: its strict `>` stays exact).
//! - **Listed, never dropped** ([`RuleNote`]): recording rules, rules
//!   without `expr` or with a `for` that is not a duration, annotations
//!   (templated or not: a check has no description), labels other than
//!   `severity` and the attach label, `keep_firing_for`, a group's `limit`,
//!   `query_offset` and unknown keys of a group or rule.
//! - **Keys** are `<group>/<alert>`; an alert name that repeats in a group
//!   without merging gets `/<severity>` (then `#n`); a check name that
//!   repeats gets ` (<severity>)`, then ` (<group>)`.
//! - **Service**: the attach label's value in the rule's `labels`, else an
//!   equality matcher on it in `expr` ([`expr::matcher_value`]), matched
//!   against service names by [`import`].

pub mod expr;
pub mod import;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use opsdeck_wire::{FiringLevel, PrometheusCheck, RuleNote};
use serde_norway::{Mapping, Value};

/// Interval of a check whose group sets none.
pub const DEFAULT_INTERVAL_S: u32 = 30;
/// Largest file read.
pub const MAX_YAML: usize = 1 << 20;
/// Most alerting rules in one file.
pub const MAX_RULES: usize = 1000;
/// Longest sustain a check has (as `validate_spec` allows).
const MAX_SUSTAIN_S: u32 = 86_400;
/// The longest check name.
const MAX_NAME: usize = 100;

/// A check proposed for one alerting rule (or a merged warning/critical
/// pair), before services and stored checks are looked at.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub key: String,
    pub group: String,
    pub alerts: Vec<String>,
    pub name: String,
    pub interval_s: u32,
    pub spec: PrometheusCheck,
    /// The attach label's value found in the rule(s).
    pub label_value: Option<String>,
    pub notes: Vec<String>,
}

/// What a rules file maps to.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub groups: u32,
    pub alerting_rules: u32,
    pub proposals: Vec<Proposal>,
    pub unsupported: Vec<RuleNote>,
}

/// The request's choices that shape every proposal.
pub struct Options<'a> {
    pub url: &'a str,
    pub tls_verify: bool,
    /// The label naming a check's service (`service`).
    pub attach_label: &'a str,
}

/// One alerting rule as read, before merging.
struct Alert {
    group: String,
    name: String,
    expr: String,
    sustained_s: u32,
    level: FiringLevel,
    interval_s: u32,
    label_value: Option<String>,
    notes: Vec<String>,
    /// Indexes into `unsupported` of what this rule lost (their `key` is
    /// filled once the proposal's key is known).
    lost: Vec<usize>,
}

/// A `labels.severity` value as a level, and a note when it was guessed.
pub fn severity(value: Option<&str>) -> (FiringLevel, Option<String>) {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return (
            FiringLevel::Critical,
            Some("no severity label: critical".into()),
        );
    };
    match v.to_ascii_lowercase().as_str() {
        "critical" | "page" | "high" | "error" | "p1" | "p2" => (FiringLevel::Critical, None),
        "warning" | "warn" | "medium" | "low" | "info" | "minor" | "notice" | "p3" | "p4" => {
            (FiringLevel::Warning, None)
        }
        _ => (
            FiringLevel::Critical,
            Some(format!("severity \"{v}\" is not a known level: critical")),
        ),
    }
}

/// A YAML syntax error with its place.
fn yaml_error(e: &serde_norway::Error) -> String {
    let mut text = e.to_string();
    match e.location() {
        Some(loc) => {
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            if let Some(pos) = text.find(&suffix) {
                text.replace_range(pos..pos + suffix.len(), "");
            }
            format!("yaml: line {} column {}: {text}", loc.line(), loc.column())
        }
        None => format!("yaml: {text}"),
    }
}

fn get<'a>(m: &'a Mapping, key: &str) -> Option<&'a Value> {
    m.get(Value::String(key.to_owned()))
}

/// A scalar as text (`for: 5m`, `expr: 1`, `severity: 2`).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A `labels`/`annotations` mapping as text pairs (other values skipped).
fn pairs(v: Option<&Value>) -> BTreeMap<String, String> {
    let Some(Value::Mapping(m)) = v else {
        return BTreeMap::new();
    };
    m.iter()
        .filter_map(|(k, v)| Some((text(k)?, text(v)?)))
        .collect()
}

fn key_name(k: &Value) -> String {
    text(k).unwrap_or_else(|| "?".into())
}

/// Shortens to `max` characters (on a character boundary).
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

fn is_templated(s: &str) -> bool {
    s.contains("{{")
}

struct Reader<'a> {
    o: &'a Options<'a>,
    unsupported: Vec<RuleNote>,
    alerts: Vec<Alert>,
    alerting_rules: u32,
}

impl Reader<'_> {
    fn lose(&mut self, group: &str, rule: &str, reason: String) -> usize {
        self.unsupported.push(RuleNote {
            group: group.to_owned(),
            rule: rule.to_owned(),
            key: None,
            reason,
        });
        self.unsupported.len() - 1
    }

    fn group(
        &mut self,
        index: usize,
        g: &Value,
        seen: &mut BTreeSet<String>,
    ) -> Result<(), String> {
        let Value::Mapping(g) = g else {
            return Err(format!(
                "groups[{index}]: a group is a mapping with name and rules"
            ));
        };
        let name = get(g, "name")
            .and_then(text)
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("groups[{index}]: a group needs a name"))?;
        if !seen.insert(name.clone()) {
            return Err(format!(
                "groups[{index}]: the group name \"{name}\" repeats (Prometheus refuses the file)"
            ));
        }
        let mut interval_s = DEFAULT_INTERVAL_S;
        if let Some(v) = get(g, "interval") {
            let raw = text(v).unwrap_or_default();
            match expr::duration(&raw) {
                Some(ms) if ms > 0 => {
                    let s = ms.div_ceil(1000).clamp(5, 86_400) as u32;
                    if u64::from(s) * 1000 != ms {
                        self.lose(
                            &name,
                            "(group)",
                            format!("interval {raw}: a check runs every 5 s to 1 day; {s} s used"),
                        );
                    }
                    interval_s = s;
                }
                _ => {
                    self.lose(
                        &name,
                        "(group)",
                        format!("interval {raw:?} is not a duration: {DEFAULT_INTERVAL_S} s used"),
                    );
                }
            }
        }
        let group_labels = pairs(get(g, "labels"));
        for (k, v) in g {
            let k = key_name(k);
            let reason = match k.as_str() {
                "name" | "interval" | "rules" | "labels" => continue,
                "limit" => format!(
                    "limit {}: not kept (a check reports every series)",
                    text(v).unwrap_or_default()
                ),
                "query_offset" => format!(
                    "query_offset {}: not kept (checks query the present)",
                    text(v).unwrap_or_default()
                ),
                other => format!("unknown group key {other}: not kept"),
            };
            self.lose(&name, "(group)", reason);
        }
        let rules = match get(g, "rules") {
            Some(Value::Sequence(r)) => r.as_slice(),
            None | Some(Value::Null) => &[],
            Some(_) => return Err(format!("groups[{index}] ({name}): rules: a list of rules")),
        };
        for (i, r) in rules.iter().enumerate() {
            self.rule(&name, i, r, interval_s, &group_labels)?;
        }
        Ok(())
    }

    fn rule(
        &mut self,
        group: &str,
        index: usize,
        r: &Value,
        interval_s: u32,
        group_labels: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let Value::Mapping(r) = r else {
            return Err(format!(
                "group {group}: rules[{index}]: a rule is a mapping"
            ));
        };
        let alert = get(r, "alert").and_then(text).map(|s| s.trim().to_owned());
        let record = get(r, "record").and_then(text).map(|s| s.trim().to_owned());
        let fallback = format!("#{}", index + 1);
        let expr_text = get(r, "expr").and_then(text).unwrap_or_default();
        let (name, alert) = match (alert, record) {
            (Some(a), None) if !a.is_empty() => (a, true),
            (None, Some(rec)) => {
                let rec = if rec.is_empty() { fallback } else { rec };
                self.lose(
                    group,
                    &rec,
                    format!(
                        "recording rule: Opsdeck records no series; its expression `{}` can be a \
                         check's query",
                        clip(expr_text.trim(), 200)
                    ),
                );
                return Ok(());
            }
            (Some(a), Some(_)) => {
                self.lose(group, &a, "both alert and record: not imported".into());
                return Ok(());
            }
            _ => {
                self.lose(
                    group,
                    &fallback,
                    "neither alert nor record: not imported".into(),
                );
                return Ok(());
            }
        };
        debug_assert!(alert);
        self.alerting_rules += 1;
        if self.alerting_rules as usize > MAX_RULES {
            return Err(format!("the file has more than {MAX_RULES} alerting rules"));
        }
        let expr = expr_text.trim().to_owned();
        if expr.is_empty() {
            self.lose(group, &name, "no expr: not imported".into());
            return Ok(());
        }
        let mut sustained_s = 0;
        let mut lost = Vec::new();
        if let Some(v) = get(r, "for") {
            let raw = text(v).unwrap_or_default();
            let Some(ms) = expr::duration(&raw) else {
                self.lose(
                    group,
                    &name,
                    format!("for {raw:?} is not a Prometheus duration (5m, 1h30m): not imported"),
                );
                return Ok(());
            };
            let s = ms.div_ceil(1000);
            if s > u64::from(MAX_SUSTAIN_S) {
                lost.push(self.lose(
                    group,
                    &name,
                    format!("for {raw}: a check sustains at most 1 day; 1d used"),
                ));
            }
            sustained_s = s.min(u64::from(MAX_SUSTAIN_S)) as u32;
        }
        let mut labels = group_labels.clone();
        labels.extend(pairs(get(r, "labels")));
        let (level, note) = severity(labels.get("severity").map(String::as_str));
        let mut notes: Vec<String> = note.into_iter().collect();
        let attach = self.o.attach_label;
        let label_value = match labels.get(attach) {
            Some(v) => Some(v.clone()),
            None => expr::matcher_value(&expr, attach),
        };
        if label_value.is_none() {
            notes.push(format!(
                "no {attach} label or {attach}=\"…\" matcher: choose a service or none"
            ));
        }
        let extra: Vec<String> = labels
            .iter()
            .filter(|(k, _)| k.as_str() != "severity" && k.as_str() != attach)
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        if !extra.is_empty() {
            lost.push(self.lose(
                group,
                &name,
                format!(
                    "labels {}: not kept (a check has no labels)",
                    extra.join(", ")
                ),
            ));
        }
        for (k, v) in pairs(get(r, "annotations")) {
            let why = if is_templated(&v) {
                "templated (Prometheus fills {{ … }} per alert); not kept, a check has no \
                 description"
            } else {
                "not kept, a check has no description"
            };
            lost.push(self.lose(
                group,
                &name,
                format!("annotation {k} {:?}: {why}", clip(&v, 300)),
            ));
        }
        for (k, v) in r {
            let k = key_name(k);
            let reason = match k.as_str() {
                "alert" | "expr" | "for" | "labels" | "annotations" => continue,
                "keep_firing_for" => format!(
                    "keep_firing_for {}: not kept (the check recovers when the expression \
                     stops firing)",
                    text(v).unwrap_or_default()
                ),
                other => format!("unknown rule key {other}: not kept"),
            };
            lost.push(self.lose(group, &name, reason));
        }
        self.alerts.push(Alert {
            group: group.to_owned(),
            name,
            expr,
            sustained_s,
            level,
            interval_s,
            label_value,
            notes,
            lost,
        });
        Ok(())
    }
}

fn threshold_text(below: bool, v: f64) -> String {
    format!("{} {v}", if below { "≤" } else { "≥" })
}

/// The proposals of the alerts read: warning/critical pairs on one
/// comparison merged, every other alert firing on any series.
fn propose(alerts: &[Alert], o: &Options<'_>) -> Vec<(Proposal, Vec<usize>)> {
    // Pairs: same group, same lhs (layout aside), same direction.
    let mut buckets: BTreeMap<(String, String, bool), Vec<usize>> = BTreeMap::new();
    let comparisons: Vec<Option<expr::Comparison>> = alerts
        .iter()
        .map(|a| expr::split_comparison(&a.expr))
        .collect();
    for (i, c) in comparisons.iter().enumerate() {
        if let Some(c) = c {
            buckets
                .entry((alerts[i].group.clone(), expr::normalise(&c.lhs), c.below))
                .or_default()
                .push(i);
        }
    }
    let mut merged_with: BTreeMap<usize, usize> = BTreeMap::new();
    for ids in buckets.values() {
        let of = |l: FiringLevel| -> Vec<usize> {
            ids.iter()
                .copied()
                .filter(|i| alerts[*i].level == l)
                .collect()
        };
        let (w, c) = (of(FiringLevel::Warning), of(FiringLevel::Critical));
        if let ([w], [c]) = (w.as_slice(), c.as_slice()) {
            let (wc, cc) = (comparisons[*w].as_ref(), comparisons[*c].as_ref());
            let ordered = match (wc, cc) {
                (Some(wc), Some(cc)) if wc.below => wc.threshold > cc.threshold,
                (Some(wc), Some(cc)) => wc.threshold < cc.threshold,
                _ => false,
            };
            if ordered {
                merged_with.insert(*w.min(c), *w.max(c));
            }
        }
    }
    let second: BTreeSet<usize> = merged_with.values().copied().collect();
    let mut out = Vec::new();
    for (i, a) in alerts.iter().enumerate() {
        if second.contains(&i) {
            continue;
        }
        let base = PrometheusCheck {
            url: o.url.to_owned(),
            query: a.expr.clone(),
            warning: 0.0,
            critical: 0.0,
            below: false,
            sustained_s: a.sustained_s,
            tls_verify: o.tls_verify,
            firing: Some(a.level),
        };
        let mut p = Proposal {
            key: format!("{}/{}", a.group, a.name),
            group: a.group.clone(),
            alerts: vec![a.name.clone()],
            name: clip(&a.name, MAX_NAME),
            interval_s: a.interval_s,
            spec: base,
            label_value: a.label_value.clone(),
            notes: a.notes.clone(),
        };
        let mut lost = a.lost.clone();
        if let Some(&j) = merged_with.get(&i) {
            let (w, c) = if a.level == FiringLevel::Warning {
                (i, j)
            } else {
                (j, i)
            };
            let (wc, cc) = match (&comparisons[w], &comparisons[c]) {
                (Some(wc), Some(cc)) => (wc, cc),
                _ => continue,
            };
            let (wa, ca) = (&alerts[w], &alerts[c]);
            p.spec.query = comparisons[i]
                .as_ref()
                .map_or(a.expr.clone(), |c| c.lhs.clone());
            p.spec.firing = None;
            p.spec.warning = wc.threshold;
            p.spec.critical = cc.threshold;
            p.spec.below = wc.below;
            p.spec.sustained_s = wa.sustained_s.min(ca.sustained_s);
            p.alerts = vec![wa.name.clone(), ca.name.clone()];
            p.name = if wa.name == ca.name {
                clip(&wa.name, MAX_NAME)
            } else {
                clip(&format!("{} / {}", wa.name, ca.name), MAX_NAME)
            };
            p.label_value = wa.label_value.clone().or(ca.label_value.clone());
            p.notes = Vec::new();
            for n in wa.notes.iter().chain(&ca.notes) {
                if !p.notes.contains(n) {
                    p.notes.push(n.clone());
                }
            }
            p.notes.insert(
                0,
                format!(
                    "merged: warning {} ({}), critical {} ({}) on the value of the expression",
                    threshold_text(wc.below, wc.threshold),
                    wa.name,
                    threshold_text(cc.below, cc.threshold),
                    ca.name
                ),
            );
            if !(wc.inclusive && cc.inclusive) {
                p.notes.push(format!(
                    "thresholds include the value itself ({} where the rule says {})",
                    if wc.below { "≤" } else { "≥" },
                    if wc.below { "<" } else { ">" }
                ));
            }
            if wa.sustained_s != ca.sustained_s {
                p.notes.push(format!(
                    "the rules' for differ ({} s, {} s): {} s used for both",
                    wa.sustained_s, ca.sustained_s, p.spec.sustained_s
                ));
            }
            if wa.label_value.is_some()
                && ca.label_value.is_some()
                && wa.label_value != ca.label_value
            {
                p.notes.push(format!(
                    "the rules name different services; {} used",
                    wa.label_value.clone().unwrap_or_default()
                ));
            }
            lost.extend(alerts[j].lost.iter().copied());
        } else if comparisons[i].is_some() {
            p.notes.insert(
                0,
                format!(
                    "{} only: the whole expression, {} while it returns a series",
                    a.level.as_str(),
                    a.level.as_str()
                ),
            );
        } else {
            p.notes.insert(
                0,
                format!(
                    "not a comparison with a number: {} while the expression returns a series",
                    a.level.as_str()
                ),
            );
        }
        out.push((p, lost));
    }
    out
}

/// Makes keys and names unique: `/<severity>` then `#n` on keys, ` (<severity>)`
/// then ` (<group>)` then ` #n` on names.
fn disambiguate(ps: &mut [Proposal]) {
    let level = |p: &Proposal| match p.spec.firing {
        Some(l) => l.as_str(),
        None => "thresholds",
    };
    let count = |ps: &[Proposal], f: &dyn Fn(&Proposal) -> String| {
        let mut n: BTreeMap<String, usize> = BTreeMap::new();
        for p in ps {
            *n.entry(f(p)).or_default() += 1;
        }
        n
    };
    let keys = count(ps, &|p| p.key.clone());
    for p in ps.iter_mut() {
        if keys[&p.key] > 1 {
            p.notes.push(format!(
                "alert name {} repeats in group {}",
                p.alerts[0], p.group
            ));
            p.key = format!("{}/{}", p.key, level(p));
        }
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for p in ps.iter_mut() {
        let n = seen.entry(p.key.clone()).or_default();
        *n += 1;
        if *n > 1 {
            p.key = format!("{}#{n}", p.key);
        }
    }
    let names = count(ps, &|p| p.name.clone());
    for p in ps.iter_mut() {
        if names[&p.name] > 1 {
            p.name = clip(&format!("{} ({})", p.name, level(p)), MAX_NAME);
        }
    }
    let names = count(ps, &|p| p.name.clone());
    for p in ps.iter_mut() {
        if names[&p.name] > 1 {
            p.name = clip(&format!("{} ({})", p.name, p.group), MAX_NAME);
        }
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for p in ps.iter_mut() {
        let n = seen.entry(p.name.clone()).or_default();
        *n += 1;
        if *n > 1 {
            p.name = clip(&format!("{} #{n}", p.name), MAX_NAME);
        }
    }
}

/// Reads a rules file and maps it (see the module docs). An error is the
/// file's fault: a YAML syntax error with its line and column, or a
/// structure Prometheus would refuse too.
pub fn map(yaml: &str, o: &Options<'_>) -> Result<Mapped, String> {
    if yaml.len() > MAX_YAML {
        return Err(format!("yaml: the file is over {} KiB", MAX_YAML / 1024));
    }
    if yaml.trim().is_empty() {
        return Err("yaml: the file is empty".into());
    }
    let doc: Value = serde_norway::from_str(yaml).map_err(|e| yaml_error(&e))?;
    let Value::Mapping(top) = &doc else {
        return Err("yaml: a rules file is a mapping with groups".into());
    };
    let groups = match get(top, "groups") {
        Some(g) => g,
        None => match get(top, "spec") {
            Some(Value::Mapping(spec)) => {
                get(spec, "groups").ok_or_else(|| "yaml: spec has no groups".to_string())?
            }
            _ => return Err("yaml: no groups (a rules file starts with groups:)".into()),
        },
    };
    let groups = match groups {
        Value::Sequence(g) => g.as_slice(),
        Value::Null => &[],
        _ => return Err("yaml: groups: a list of rule groups".into()),
    };
    let mut r = Reader {
        o,
        unsupported: Vec::new(),
        alerts: Vec::new(),
        alerting_rules: 0,
    };
    let mut seen = BTreeSet::new();
    for (i, g) in groups.iter().enumerate() {
        r.group(i, g, &mut seen).map_err(|e| format!("yaml: {e}"))?;
    }
    let mapped = propose(&r.alerts, o);
    let mut proposals: Vec<Proposal> = mapped.iter().map(|(p, _)| p.clone()).collect();
    disambiguate(&mut proposals);
    let mut unsupported = r.unsupported;
    for (p, (_, lost)) in proposals.iter().zip(&mapped) {
        for &i in lost {
            unsupported[i].key = Some(p.key.clone());
        }
    }
    Ok(Mapped {
        groups: groups.len() as u32,
        alerting_rules: r.alerting_rules,
        proposals,
        unsupported,
    })
}
