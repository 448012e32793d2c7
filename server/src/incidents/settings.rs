//! Incident settings: SLA targets per severity, automatic opening, what
//! recovery does, the default escalation policy, the ack-link lifetime.

use opsdeck_wire::{IncidentSettings, SlaTarget};
use sqlx::PgConnection;

use super::edit::check_policy;
use super::error::{invalid, Result};
use super::{model, store};

/// The settings with the SLA targets by severity.
pub async fn read(conn: &mut PgConnection) -> Result<IncidentSettings> {
    let r = store::settings(conn).await?;
    let targets = model::targets(conn).await?;
    let mut sla: Vec<SlaTarget> = targets.into_values().collect();
    sla.sort_by_key(|t| t.severity);
    Ok(IncidentSettings {
        auto_open: r.auto_open,
        on_recovery: r.on_recovery,
        default_policy_id: r.default_policy_id,
        ack_link_ttl_secs: i64::from(r.ack_link_ttl_secs),
        sla,
    })
}

/// Checks and saves the settings (the caller audits and commits).
pub async fn save(conn: &mut PgConnection, s: &IncidentSettings) -> Result<()> {
    if s.on_recovery != "propose" && s.on_recovery != "resolve" {
        return Err(invalid("on_recovery: propose or resolve"));
    }
    if !(60..=604_800).contains(&s.ack_link_ttl_secs) {
        return Err(invalid("ack_link_ttl_secs: 60 s to 7 days"));
    }
    if let Some(p) = s.default_policy_id {
        check_policy(conn, p).await?;
    }
    store::save_settings(
        conn,
        &store::SettingsRow {
            auto_open: s.auto_open,
            on_recovery: s.on_recovery.clone(),
            default_policy_id: s.default_policy_id,
            ack_link_ttl_secs: s.ack_link_ttl_secs as i32,
        },
    )
    .await?;
    let mut seen = Vec::new();
    for t in &s.sla {
        if seen.contains(&t.severity) {
            return Err(invalid(format!("sla: {} given twice", t.severity.as_str())));
        }
        seen.push(t.severity);
        let secs = [
            ("ack_secs", t.ack_secs),
            ("diagnose_secs", t.diagnose_secs),
            ("mitigate_secs", t.mitigate_secs),
            ("resolve_secs", t.resolve_secs),
            ("postmortem_secs", t.postmortem_secs),
        ];
        for (name, v) in secs {
            if let Some(v) = v {
                if !(1..=31_536_000).contains(&v) {
                    return Err(invalid(format!(
                        "sla {}: {name} must be 1 s to 1 year",
                        t.severity.as_str()
                    )));
                }
            }
        }
        store::save_target(
            conn,
            t.severity.level(),
            secs.map(|(_, v)| v.map(|v| v as i32)),
        )
        .await?;
    }
    Ok(())
}
