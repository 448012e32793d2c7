//! Escalation set-up written straight to the database (the policy editor
//! is not what these tests are about): a default policy with one person per
//! level and a webhook channel for every severity.

use serde_json::json;
use sqlx::PgPool;

/// A default escalation policy with one person per level (delays in
/// seconds from the trigger), and a webhook channel for every severity.
pub async fn set_up_paging(pool: &PgPool, delays: &[i32], webhook: &str) -> Vec<i64> {
    let policy: i64 = sqlx::query_scalar(
        "INSERT INTO escalation_policies (name, is_default) VALUES ('handbook', true) RETURNING id",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let mut people = Vec::new();
    for (level, delay) in delays.iter().enumerate() {
        let person: i64 =
            sqlx::query_scalar("INSERT INTO people (name, email) VALUES ($1, $2) RETURNING id")
                .bind(format!("Level {level} person"))
                .bind(format!("l{level}@example.test"))
                .fetch_one(pool)
                .await
                .unwrap();
        sqlx::query(
            "INSERT INTO escalation_levels (policy_id, level, delay_secs) VALUES ($1, $2, $3)",
        )
        .bind(policy)
        .bind(level as i32)
        .bind(delay)
        .execute(pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO escalation_targets (policy_id, level, person_id) VALUES ($1, $2, $3)",
        )
        .bind(policy)
        .bind(level as i32)
        .bind(person)
        .execute(pool)
        .await
        .unwrap();
        people.push(person);
    }
    sqlx::query("UPDATE incident_settings SET default_policy_id = $1")
        .bind(policy)
        .execute(pool)
        .await
        .unwrap();
    let channel: i64 = sqlx::query_scalar(
        "INSERT INTO channels (name, kind, config) VALUES ('pager', 'webhook', $1) RETURNING id",
    )
    .bind(json!({ "url": webhook }))
    .fetch_one(pool)
    .await
    .unwrap();
    for sev in 1..=4i16 {
        sqlx::query("INSERT INTO channel_rules (severity, channel_id) VALUES ($1, $2)")
            .bind(sev)
            .bind(channel)
            .execute(pool)
            .await
            .unwrap();
    }
    people
}
