//! Login throttling: growing delays, never a hard lockout.
//!
//! Two counters of recent failures (forgotten 24 h after the last failure):
//! - per source address: 10 free failures, then 1 s, 2 s, 4 s … up to 15 min
//!   between attempts;
//! - per account: 5 free failures, then 1 s, 2 s, 4 s … up to 5 min. This
//!   delay does not apply to addresses the user has logged in from before
//!   ([`remember_source`]), so an attacker hammering an account slows
//!   themselves, not the victim at their usual desk.
//!
//! While a delay runs, attempts are refused with 429 and `Retry-After`
//! before any password is checked, and they do not extend the delay.
//! A successful login clears both counters.

use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;

const ADDRESS_FREE: i32 = 10;
const ADDRESS_MAX: Duration = Duration::from_secs(15 * 60);
const ACCOUNT_FREE: i32 = 5;
const ACCOUNT_MAX: Duration = Duration::from_secs(5 * 60);

fn delay(failures: i32, free: i32, max: Duration) -> Option<Duration> {
    let over = failures - free;
    if over <= 0 {
        return None;
    }
    let secs = 1u64
        .checked_shl((over - 1).min(20) as u32)
        .unwrap_or(u64::MAX);
    Some(Duration::from_secs(secs).min(max))
}

/// How long this attempt must wait, if it must.
pub async fn blocked_for(
    pool: &PgPool,
    source: &str,
    username: &str,
    known_source: bool,
) -> sqlx::Result<Option<Duration>> {
    let until = sqlx::query_scalar!(
        r#"SELECT max(blocked_until) AS "until" FROM login_throttle
           WHERE blocked_until > now()
             AND ((scope = 'address' AND key = $1) OR (scope = 'account' AND key = $2 AND NOT $3))"#,
        source,
        username,
        known_source
    )
    .fetch_one(pool)
    .await?;
    Ok(until.map(|u| (u - Utc::now()).to_std().unwrap_or(Duration::from_secs(1))))
}

/// Counts a failed attempt against the address and the account.
pub async fn record_failure(pool: &PgPool, source: &str, username: &str) -> sqlx::Result<()> {
    for (scope, key, free, max) in [
        ("address", source, ADDRESS_FREE, ADDRESS_MAX),
        ("account", username, ACCOUNT_FREE, ACCOUNT_MAX),
    ] {
        let failures = sqlx::query_scalar!(
            r#"INSERT INTO login_throttle (scope, key, failures, last_failure_at) VALUES ($1, $2, 1, now())
               ON CONFLICT (scope, key) DO UPDATE SET
                 failures = CASE WHEN login_throttle.last_failure_at < now() - interval '24 hours'
                                 THEN 1 ELSE login_throttle.failures + 1 END,
                 last_failure_at = now()
               RETURNING failures"#,
            scope,
            key
        )
        .fetch_one(pool)
        .await?;
        if let Some(d) = delay(failures, free, max) {
            sqlx::query!(
                "UPDATE login_throttle SET blocked_until = now() + make_interval(secs => $3) WHERE scope = $1 AND key = $2",
                scope,
                key,
                d.as_secs_f64()
            )
            .execute(pool)
            .await?;
        }
    }
    Ok(())
}

/// Clears both counters and remembers the address as one this user uses.
pub async fn record_success(
    pool: &PgPool,
    source: &str,
    username: &str,
    user_id: i64,
) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM login_throttle WHERE (scope = 'address' AND key = $1) OR (scope = 'account' AND key = $2)",
        source,
        username
    )
    .execute(pool)
    .await?;
    remember_source(pool, user_id, source).await
}

async fn remember_source(pool: &PgPool, user_id: i64, source: &str) -> sqlx::Result<()> {
    sqlx::query!(
        r#"INSERT INTO login_known_sources (user_id, source) VALUES ($1, $2)
           ON CONFLICT (user_id, source) DO UPDATE SET last_success_at = now()"#,
        user_id,
        source
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether the user logged in successfully from this address in the last 90 days.
pub async fn is_known_source(pool: &PgPool, user_id: i64, source: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM login_known_sources
             WHERE user_id = $1 AND source = $2 AND last_success_at > now() - interval '90 days') AS "known!""#,
        user_id,
        source
    )
    .fetch_one(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        assert_eq!(delay(5, 5, ACCOUNT_MAX), None);
        assert_eq!(delay(6, 5, ACCOUNT_MAX), Some(Duration::from_secs(1)));
        assert_eq!(delay(7, 5, ACCOUNT_MAX), Some(Duration::from_secs(2)));
        assert_eq!(delay(9, 5, ACCOUNT_MAX), Some(Duration::from_secs(8)));
        assert_eq!(delay(500, 5, ACCOUNT_MAX), Some(ACCOUNT_MAX));
        assert_eq!(delay(500, 10, ADDRESS_MAX), Some(ADDRESS_MAX));
    }
}
