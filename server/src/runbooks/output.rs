//! A step's output: lines a step writes while it runs, bounded in size and
//! visibly truncated, read by the engine to store and stream.
//!
//! Credentials in URLs (`scheme://user:password@host`) are masked as each
//! line is written ([`mask_credentials`]: `postgres://u:***@h/db`), so
//! stored output never holds them and nobody — operators included — reads
//! them back from a run. Which readers see which steps' output at all is
//! decided when a run is read (`runs::can_read_output`).

use std::borrow::Cow;
use std::sync::{Arc, Mutex, OnceLock};

/// `scheme://user:password@` with the password replaced by `***`. The
/// user stays (it says which account was used); a password may contain
/// anything but white space, `@` and `/` here (RFC 3986 wants `@` and `/`
/// percent-encoded), and an empty one is left alone.
pub fn mask_credentials(s: &str) -> Cow<'_, str> {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"([A-Za-z][A-Za-z0-9+.\-]*://[^\s/@:]*):([^\s@/]+)@")
            .expect("a valid pattern")
    });
    re.replace_all(s, "${1}:***@")
}

/// Most bytes of output kept per step.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// [`mask_credentials`] on every string of a step's result (its named
/// outputs: an exec step's `stdout`, an http step's message).
pub fn mask_value(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => {
            if let Cow::Owned(m) = mask_credentials(s) {
                *s = m;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_value),
        serde_json::Value::Object(map) => map.values_mut().for_each(mask_value),
        _ => {}
    }
}

#[derive(Default)]
pub struct Output {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    text: String,
    dropped: usize,
    /// Bumped on every write; the engine flushes when it changed.
    version: u64,
}

impl Output {
    pub fn new() -> Output {
        Output::default()
    }

    /// Another handle on the same output, for callbacks that outlive a
    /// borrow (progress reports from a pipeline).
    pub fn handle(&self) -> Output {
        Output {
            inner: self.inner.clone(),
        }
    }

    /// Appends one line (a newline is added).
    pub fn line(&self, s: impl AsRef<str>) {
        let masked = mask_credentials(s.as_ref());
        let s = masked.as_ref();
        let mut i = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        i.version += 1;
        let room = OUTPUT_LIMIT.saturating_sub(i.text.len());
        if room == 0 {
            i.dropped += s.len() + 1;
            return;
        }
        if s.len() < room {
            i.text.push_str(s);
            i.text.push('\n');
        } else {
            let mut cut = room;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            i.text.push_str(&s[..cut]);
            i.dropped += s.len() - cut + 1;
        }
    }

    /// Appends a block of text line by line.
    pub fn text(&self, s: &str) {
        for l in s.lines() {
            self.line(l);
        }
    }

    /// The output so far, with a visible marker when some was dropped, and
    /// whether it was truncated.
    pub fn snapshot(&self) -> (String, bool, u64) {
        let i = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if i.dropped > 0 {
            (
                format!(
                    "{}\n[… {} more bytes of output truncated]\n",
                    i.text.trim_end_matches('\n'),
                    i.dropped
                ),
                true,
                i.version,
            )
        } else {
            (i.text.clone(), false, i.version)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_bounded_and_says_so() {
        let o = Output::new();
        o.line("hello");
        assert_eq!(o.snapshot().0, "hello\n");
        assert!(!o.snapshot().1);
        let big = "x".repeat(OUTPUT_LIMIT);
        o.line(&big);
        o.line("more");
        let (text, truncated, _) = o.snapshot();
        assert!(truncated);
        assert!(text.len() <= OUTPUT_LIMIT + 64, "{}", text.len());
        assert!(text.contains("more bytes of output truncated"));
    }

    #[test]
    fn credentials_in_urls_are_masked_when_written() {
        let o = Output::new();
        o.line("connecting to postgres://u:secret@h/db now");
        o.text("a\nredis://:hunter2@cache:6379/0 and https://bob:p%40ss@x.example/\nb");
        o.line("mysql://root@db/app (no password) http://h/a:b@c");
        let (text, _, _) = o.snapshot();
        assert!(!text.contains("secret") && !text.contains("hunter2") && !text.contains("p%40ss"));
        assert!(text.contains("postgres://u:***@h/db now"), "{text}");
        assert!(text.contains("redis://:***@cache:6379/0"), "{text}");
        assert!(text.contains("https://bob:***@x.example/"), "{text}");
        assert!(text.contains("mysql://root@db/app (no password)"), "{text}");
        assert!(
            text.contains("http://h/a:b@c"),
            "a path is not userinfo: {text}"
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let o = Output::new();
        o.line("é".repeat(OUTPUT_LIMIT));
        let (text, truncated, _) = o.snapshot();
        assert!(truncated && text.is_char_boundary(text.len()));
    }
}
