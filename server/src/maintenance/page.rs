//! The maintenance page proxy mode places (askama; no internal details).
//!
//! The same `until` always gives the same bytes (nothing else goes in: no
//! clock, no reason, no service, host or person names, no version), so
//! placing it twice changes nothing. Self-contained: inline CSS, no script,
//! no external resources.

use askama::Template;
use chrono::{DateTime, SecondsFormat, Utc};

#[derive(Template)]
#[template(path = "maintenance.html")]
struct MaintenancePage {
    /// RFC 3339, for `<time datetime>`.
    datetime: String,
    /// "23:00 UTC on Wednesday 25 November 2026".
    human: String,
}

/// The page: a heading, a short sentence and the expected end time.
/// Nothing else: no reason, no service, host or person names.
pub fn render(until: DateTime<Utc>) -> String {
    let page = MaintenancePage {
        datetime: until.to_rfc3339_opts(SecondsFormat::Secs, true),
        human: until.format("%H:%M UTC on %A %-d %B %Y").to_string(),
    };
    page.render().unwrap_or_else(|e| {
        // Only a formatter error could get here; still serve a page.
        tracing::error!(error = %e, "rendering the maintenance page failed");
        "<!doctype html><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\">\
         <title>Maintenance</title><h1>We&rsquo;ll be back soon</h1>\
         <p>This service is undergoing scheduled maintenance.</p>"
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_end_and_nothing_else() {
        let until = DateTime::parse_from_rfc3339("2026-11-25T23:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let html = render(until);
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<title>Maintenance</title>"));
        assert!(html.contains("<meta name=\"robots\" content=\"noindex\">"));
        assert!(html.contains("scheduled maintenance"));
        assert!(html.contains(
            "Expected back by <time datetime=\"2026-11-25T23:00:00Z\">23:00 UTC on Wednesday 25 November 2026</time>."
        ));
        assert!(!html.contains("{{") && !html.contains("{%"));
        let lower = html.to_lowercase();
        for absent in [
            "opsdeck", "<script", "src=", "href=", "http://", "https://", "@import", "url(",
        ] {
            assert!(!lower.contains(absent), "{absent} in the page");
        }
        assert_eq!(html, render(until));
        let other = render(until + chrono::TimeDelta::minutes(1));
        assert!(other.contains("23:01 UTC on Wednesday 25 November 2026"));
        assert_ne!(html, other);
    }
}
