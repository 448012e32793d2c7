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
//! Every admitted attempt is counted before its password is checked
//! ([`admit`], one transaction under row locks), so concurrent guesses
//! cannot all pass before the first is counted. A successful login clears
//! both counters.

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

/// Admits or refuses one login attempt, atomically: under row locks on the
/// address's and the account's counters it checks for a running delay and,
/// when there is none, counts the attempt as a failure *before* any password
/// is checked ([`record_success`] clears it again). Concurrent guesses are
/// thus serialised on the counters: once the free attempts are used up, the
/// delay is in force for every attempt that comes after, however many are in
/// flight. Returns how long a refused attempt must wait; a refused attempt
/// does not extend the delay.
pub async fn admit(
    pool: &PgPool,
    source: &str,
    username: &str,
    known_source: bool,
) -> sqlx::Result<Option<Duration>> {
    let mut tx = pool.begin().await?;
    // The rows must exist to be locked; failures = 0 is "no attempt yet".
    sqlx::query!(
        r#"INSERT INTO login_throttle (scope, key, failures, last_failure_at)
           VALUES ('address', $1, 0, now()), ('account', $2, 0, now())
           ON CONFLICT (scope, key) DO NOTHING"#,
        source,
        username
    )
    .execute(&mut *tx)
    .await?;
    let rows = sqlx::query!(
        r#"SELECT scope, blocked_until FROM login_throttle
           WHERE (scope = 'address' AND key = $1) OR (scope = 'account' AND key = $2)
           ORDER BY scope DESC FOR UPDATE"#,
        source,
        username
    )
    .fetch_all(&mut *tx)
    .await?;
    let now = Utc::now();
    let until = rows
        .iter()
        .filter(|r| r.scope == "address" || !known_source)
        .filter_map(|r| r.blocked_until)
        .filter(|u| *u > now)
        .max();
    if let Some(u) = until {
        tx.commit().await?;
        return Ok(Some((u - now).to_std().unwrap_or(Duration::from_secs(1))));
    }
    for (scope, key, free, max) in [
        ("address", source, ADDRESS_FREE, ADDRESS_MAX),
        ("account", username, ACCOUNT_FREE, ACCOUNT_MAX),
    ] {
        let failures = sqlx::query_scalar!(
            r#"UPDATE login_throttle SET
                 failures = CASE WHEN last_failure_at < now() - interval '24 hours'
                                 THEN 1 ELSE failures + 1 END,
                 last_failure_at = now()
               WHERE scope = $1 AND key = $2
               RETURNING failures"#,
            scope,
            key
        )
        .fetch_one(&mut *tx)
        .await?;
        if let Some(d) = delay(failures, free, max) {
            sqlx::query!(
                "UPDATE login_throttle SET blocked_until = now() + make_interval(secs => $3) WHERE scope = $1 AND key = $2",
                scope,
                key,
                d.as_secs_f64()
            )
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(None)
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
