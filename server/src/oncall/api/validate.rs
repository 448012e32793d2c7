//! Validation at the boundary for contacts, rotations and policies. Every
//! message starts with the field it is about (`email: …`,
//! `levels[1].targets[0]: …`), so the admin page can show it next to the
//! form. HTTP-only (the answer is an `ApiError` carrying the field), so it
//! lives in the API folder; the domain checks in `crate::oncall` return
//! `OncallError`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveTime, Weekday};
use chrono_tz::Tz;
use sqlx::PgConnection;

use crate::error::{ApiError, ApiResult};

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::from_validation(msg.into())
}

/// A name: trimmed, 1–100 characters, no control characters.
pub fn name(field: &str, s: &str) -> ApiResult<String> {
    let s = s.trim();
    let n = s.chars().count();
    if n == 0 || n > 100 {
        return Err(bad(format!("{field}: 1–100 characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(bad(format!("{field}: no control characters")));
    }
    Ok(s.to_owned())
}

/// Free text: trimmed, at most `max` characters; line breaks allowed.
pub fn text(field: &str, s: &str, max: usize) -> ApiResult<String> {
    let s = s.trim();
    if s.chars().count() > max {
        return Err(bad(format!("{field}: at most {max} characters")));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(bad(format!("{field}: no control characters")));
    }
    Ok(s.to_owned())
}

/// Empty or blank becomes `None`.
fn optional(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// An e-mail address: `local@domain.tld`, no spaces, at most 254 characters.
pub fn email(s: &Option<String>) -> ApiResult<Option<String>> {
    let Some(s) = optional(s) else {
        return Ok(None);
    };
    let msg = || {
        bad(format!(
            "email: \"{s}\" does not look like an e-mail address"
        ))
    };
    if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(msg());
    }
    let (local, domain) = s.split_once('@').ok_or_else(msg)?;
    let labels_ok = domain.split('.').count() >= 2
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if local.is_empty() || local.len() > 64 || domain.contains('@') || !labels_ok {
        return Err(msg());
    }
    Ok(Some(s.to_owned()))
}

/// A phone number: `+`, then digits, spaces and dashes (6–15 digits, the
/// E.164 range with some slack for short test numbers).
pub fn phone(s: &Option<String>) -> ApiResult<Option<String>> {
    let Some(s) = optional(s) else {
        return Ok(None);
    };
    let msg = || {
        bad(format!(
            "phone: \"{s}\" is not a phone number (use + and the country code, then digits, \
             spaces or dashes, e.g. +49 30 1234567)"
        ))
    };
    let rest = s.strip_prefix('+').ok_or_else(msg)?;
    if !rest
        .chars()
        .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
    {
        return Err(msg());
    }
    let digits = rest.chars().filter(char::is_ascii_digit).count();
    if !(6..=15).contains(&digits) || !rest.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(msg());
    }
    Ok(Some(s.to_owned()))
}

/// A chat handle (`@ops-alice`, `alice@chat.example`): at most 100
/// characters, no spaces.
pub fn chat_handle(s: &Option<String>) -> ApiResult<Option<String>> {
    let Some(s) = optional(s) else {
        return Ok(None);
    };
    if s.chars().count() > 100 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("chat_handle: at most 100 characters, no spaces"));
    }
    Ok(Some(s.to_owned()))
}

/// `daily` or `weekly`, with the weekday only (and always) for weekly.
pub fn handoff(kind: &str, weekday: Option<i16>) -> ApiResult<(&'static str, Option<Weekday>)> {
    match (kind.trim(), weekday) {
        ("daily", None) => Ok(("daily", None)),
        ("daily", Some(_)) => Err(bad(
            "handoff_weekday: only for weekly handoffs (leave it out for daily)",
        )),
        ("weekly", None) => Err(bad(
            "handoff_weekday: required for weekly handoffs (1 = Monday … 7 = Sunday)",
        )),
        ("weekly", Some(d)) => Ok(("weekly", Some(weekday_of(d)?))),
        (other, _) => Err(bad(format!("handoff: \"{other}\" is not daily or weekly"))),
    }
}

/// ISO weekday number (1 = Monday) to a weekday.
pub fn weekday_of(d: i16) -> ApiResult<Weekday> {
    crate::oncall::rotation::iso_weekday(d).ok_or_else(|| {
        bad(format!(
            "handoff_weekday: {d} is not 1 (Monday) … 7 (Sunday)"
        ))
    })
}

/// `HH:MM`, 00:00–23:59, exactly two digits each.
pub fn handoff_time(s: &str) -> ApiResult<NaiveTime> {
    let s = s.trim();
    let msg = || {
        bad(format!(
            "handoff_time: \"{s}\" is not a time HH:MM (00:00–23:59)"
        ))
    };
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' {
        return Err(msg());
    }
    NaiveTime::parse_from_str(s, "%H:%M").map_err(|_| msg())
}

/// An IANA time zone name.
pub fn time_zone(s: &str) -> ApiResult<Tz> {
    let s = s.trim();
    if s.is_empty() {
        return Err(bad(
            "time_zone: required (an IANA name such as Europe/Berlin, or UTC)",
        ));
    }
    s.parse::<Tz>().map_err(|_| {
        bad(format!(
            "time_zone: unknown time zone \"{s}\" (use an IANA name such as Europe/Berlin)"
        ))
    })
}

/// Ids listed at most once (`field` names the list).
pub fn no_duplicates(field: &str, ids: &[i64]) -> ApiResult<()> {
    let mut seen = BTreeSet::new();
    for id in ids {
        if !seen.insert(*id) {
            return Err(bad(format!("{field}: person {id} is listed twice")));
        }
    }
    Ok(())
}

/// The names of these people; 400 naming the first id that does not exist.
pub async fn people(
    conn: &mut PgConnection,
    field: &str,
    ids: &[i64],
) -> ApiResult<BTreeMap<i64, String>> {
    let rows: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM people WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    let found: BTreeMap<i64, String> = rows.into_iter().collect();
    if let Some(missing) = ids.iter().find(|id| !found.contains_key(id)) {
        return Err(bad(format!("{field}: no person with id {missing}")));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    #[test]
    fn contact_details() {
        assert_eq!(
            email(&some(" a.b@example.org ")).unwrap(),
            some("a.b@example.org")
        );
        assert_eq!(email(&some("")).unwrap(), None);
        assert_eq!(email(&None).unwrap(), None);
        for bad in [
            "ab",
            "a@b",
            "@example.org",
            "a b@example.org",
            "a@@example.org",
            "a@exa_mple.org",
            "a@.org",
        ] {
            assert!(
                email(&some(bad))
                    .unwrap_err()
                    .to_string()
                    .starts_with("email:"),
                "{bad}"
            );
        }
        assert_eq!(
            phone(&some("+49 30 123-4567")).unwrap(),
            some("+49 30 123-4567")
        );
        for bad in [
            "0301234567",
            "+49 (30) 1234567",
            "+12",
            "+ 49301234567",
            "+49x301234567",
        ] {
            assert!(
                phone(&some(bad))
                    .unwrap_err()
                    .to_string()
                    .starts_with("phone:"),
                "{bad}"
            );
        }
        assert!(chat_handle(&some("@ops alice")).is_err());
        assert_eq!(
            chat_handle(&some("@ops-alice")).unwrap(),
            some("@ops-alice")
        );
    }

    #[test]
    fn rotation_fields() {
        assert_eq!(
            handoff_time("09:00").unwrap(),
            NaiveTime::from_hms_opt(9, 0, 0).unwrap()
        );
        for bad in ["9:00", "24:00", "09:60", "09:00:00", "0900", ""] {
            assert!(handoff_time(bad).is_err(), "{bad}");
        }
        assert!(handoff("weekly", None).is_err());
        assert!(handoff("daily", Some(1)).is_err());
        assert!(handoff("weekly", Some(8)).is_err());
        assert!(handoff("hourly", None).is_err());
        assert_eq!(
            handoff("weekly", Some(7)).unwrap(),
            ("weekly", Some(Weekday::Sun))
        );
        assert!(time_zone("Europe/Berlin").is_ok());
        assert!(time_zone("Mars/Olympus")
            .unwrap_err()
            .to_string()
            .starts_with("time_zone:"));
        assert!(name("name", "  ").is_err());
        assert!(name("name", &"x".repeat(101)).is_err());
        assert_eq!(name("name", " Alice ").unwrap(), "Alice");
    }
}
