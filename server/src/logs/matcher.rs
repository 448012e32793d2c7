//! What a log search looks for, decided line by line without I/O: the text
//! or regular expression, the level guessed from the line, and the time
//! bounds as the operator wrote them (`15m`, `2026-12-07T08:00:00Z`).

use std::sync::LazyLock;

use chrono::{DateTime, Duration, Utc};
use opsdeck_wire::LogLevel;
use regex::{Regex, RegexBuilder};

/// Longest query accepted.
pub const MAX_QUERY_CHARS: usize = 1000;
/// Largest compiled regular expression (the `regex` crate's own limit):
/// a query cannot make the server build a huge automaton.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Decides whether a line is a hit.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// `None`: every line (within the level).
    pattern: Option<Regex>,
    level: Option<LogLevel>,
}

impl Matcher {
    /// Text is found case-insensitively; a regex is taken as written (add
    /// `(?i)` for case-insensitive). The error starts with the field.
    pub fn new(query: &str, regex: bool, level: Option<LogLevel>) -> Result<Matcher, String> {
        if query.chars().count() > MAX_QUERY_CHARS {
            return Err(format!("query: at most {MAX_QUERY_CHARS} characters"));
        }
        let pattern = if query.is_empty() {
            None
        } else {
            let source = if regex {
                query.to_owned()
            } else {
                regex::escape(query)
            };
            let built = RegexBuilder::new(&source)
                .case_insensitive(!regex)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| match e {
                    regex::Error::Syntax(s) => format!("query: not a regular expression: {s}"),
                    regex::Error::CompiledTooBig(_) => {
                        "query: the regular expression is too large".to_owned()
                    }
                    other => format!("query: {other}"),
                })?;
            Some(built)
        };
        Ok(Matcher { pattern, level })
    }

    /// Whether `line` is a hit.
    pub fn is_hit(&self, line: &str) -> bool {
        if let Some(p) = &self.pattern {
            if !p.is_match(line) {
                return false;
            }
        }
        match self.level {
            None => true,
            Some(min) => guess_level(line).is_some_and(|l| l >= min),
        }
    }
}

static LEVEL_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(fatal|critical|crit|emerg|emergency|panic|panicked|traceback|error|err|exception|warn|warning|info|notice|debug|trace)\b",
    )
    .expect("a valid regex")
});

/// The level of a log line, guessed: a JSON object's `level`, `lvl`,
/// `severity` or `levelname` field (names or pino's numbers), otherwise
/// the first level word in the line (`ERROR`, `warn`, `[INFO]`, `panic`,
/// `Traceback`). `None` when the line names none.
pub fn guess_level(line: &str) -> Option<LogLevel> {
    let trimmed = line.trim_start();
    if trimmed.starts_with('{') {
        if let Some(l) = json_level(trimmed) {
            return Some(l);
        }
    }
    let word = LEVEL_WORD.find(line)?.as_str().to_ascii_lowercase();
    level_of_word(&word)
}

fn level_of_word(word: &str) -> Option<LogLevel> {
    Some(match word {
        "fatal" | "critical" | "crit" | "emerg" | "emergency" | "panic" | "panicked" => {
            LogLevel::Fatal
        }
        "error" | "err" | "exception" | "traceback" => LogLevel::Error,
        "warn" | "warning" => LogLevel::Warn,
        "info" | "notice" => LogLevel::Info,
        "debug" | "trace" => LogLevel::Debug,
        _ => return None,
    })
}

fn json_level(line: &str) -> Option<LogLevel> {
    let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).ok()?;
    let field = ["level", "lvl", "severity", "levelname", "log.level"]
        .iter()
        .find_map(|k| v.get(*k))?;
    match field {
        serde_json::Value::String(s) => level_of_word(&s.to_ascii_lowercase()),
        // pino / bunyan: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal.
        serde_json::Value::Number(n) => Some(match n.as_u64()? {
            0..=29 => LogLevel::Debug,
            30..=39 => LogLevel::Info,
            40..=49 => LogLevel::Warn,
            50..=59 => LogLevel::Error,
            _ => LogLevel::Fatal,
        }),
        _ => None,
    }
}

/// A point in time as an operator writes it: RFC 3339, or an age before
/// `now` (`90s`, `15m`, `2h`, `7d`, `1w`). The error starts with `field`.
pub fn parse_time(field: &str, text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(t) {
        return Ok(at.with_timezone(&Utc));
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: i64 = n.parse().map_err(|_| {
        format!("{field}: a time (RFC 3339, e.g. 2026-12-07T08:00:00Z) or an age like 15m, 2h, 7d")
    })?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("{field}: the unit of an age is s, m, h, d or w")),
    };
    n.checked_mul(secs)
        .filter(|s| *s <= 3660 * 86_400)
        .map(|s| now - Duration::seconds(s))
        .ok_or_else(|| format!("{field}: at most 10 years back"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_case_insensitive_and_literal() {
        let m = Matcher::new("user.id", false, None).unwrap();
        assert!(m.is_hit("bad USER.ID 7"));
        assert!(!m.is_hit("userXid"));
        let r = Matcher::new(r"HTTP [45]\d\d", true, None).unwrap();
        assert!(r.is_hit("GET / HTTP 503"));
        assert!(!r.is_hit("GET / http 503"));
        assert!(Matcher::new("", false, None).unwrap().is_hit("anything"));
    }

    #[test]
    fn bad_regexes_and_long_queries_are_refused() {
        let e = Matcher::new("(unclosed", true, None).unwrap_err();
        assert!(e.starts_with("query: not a regular expression"), "{e}");
        let e = Matcher::new(r"(\w{1000}){1000}", true, None).unwrap_err();
        assert!(e.contains("too large"), "{e}");
        assert!(Matcher::new(&"a".repeat(1001), false, None).is_err());
    }

    #[test]
    fn levels_are_guessed_from_words_and_json() {
        use LogLevel::*;
        let cases = [
            ("2026-12-07 ERROR db: timeout", Some(Error)),
            ("[warn] disk 91%", Some(Warn)),
            ("level=info msg=started", Some(Info)),
            ("Traceback (most recent call last):", Some(Error)),
            ("thread 'main' panicked at src/main.rs:3", Some(Fatal)),
            ("panic: runtime error: index out of range", Some(Fatal)),
            (r#"{"level":"warning","msg":"slow"}"#, Some(Warn)),
            (r#"{"level":50,"msg":"boom"}"#, Some(Error)),
            (r#"{"severity":"CRITICAL"}"#, Some(Fatal)),
            ("GET /health 200", None),
            ("no errors found", None),
        ];
        for (line, want) in cases {
            assert_eq!(guess_level(line), want, "{line}");
        }
    }

    #[test]
    fn a_level_filter_keeps_that_level_and_worse() {
        let m = Matcher::new("", false, Some(LogLevel::Warn)).unwrap();
        assert!(m.is_hit("WARN a"));
        assert!(m.is_hit("FATAL b"));
        assert!(!m.is_hit("INFO c"));
        assert!(!m.is_hit("plain"));
        let both = Matcher::new("db", false, Some(LogLevel::Error)).unwrap();
        assert!(both.is_hit("ERROR db down"));
        assert!(!both.is_hit("ERROR cache down"));
        assert!(!both.is_hit("INFO db up"));
    }

    #[test]
    fn times_are_rfc3339_or_ages() {
        let now: DateTime<Utc> = "2026-12-07T12:00:00Z".parse().unwrap();
        assert_eq!(
            parse_time("since", "15m", now).unwrap(),
            "2026-12-07T11:45:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            parse_time("since", "2026-12-07T09:00:00+01:00", now).unwrap(),
            "2026-12-07T08:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert!(parse_time("since", "yesterday", now)
            .unwrap_err()
            .starts_with("since:"));
        assert!(parse_time("until", "5y", now).unwrap_err().contains("unit"));
        assert!(parse_time("since", "99999999999d", now).is_err());
    }
}
