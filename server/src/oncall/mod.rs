//! Contacts and on-call: people, teams, rotations (daily/weekly handoffs at
//! a local time, overrides), escalation policies, and who is on call.
//!
//! **Layout.** [`rotation`] is the pure rotation math (handoffs on local
//! dates, DST, overrides; unit-tested); [`store`] holds the SQL; [`api`]
//! is the HTTP layer: `api::validate` checks input at the boundary,
//! `api::people` (people and teams), `api::rotations` (rotations,
//! overrides, `GET /api/v1/oncall`) and `api::policies` (escalation
//! policies) are the handlers. This file holds what other modules call:
//! [`level_recipients`], [`levels`], and the loaders the API shares.
//!
//! **Roles.** Everyone (viewer and up) reads everything, contact details
//! included: "who is on call now, and how do I reach them" is the point of
//! the page. Only admins write. Every write is audited in its transaction
//! (`person.create|update|delete`, `team.…`, `rotation.…`,
//! `rotation.override.create|delete`, `escalation_policy.…`); audit params
//! carry names and settings, never phone numbers or e-mail addresses
//! (contact details are personal data; the audit log is kept forever).
//!
//! **Escalation never silently loses a level.** Deleting a person, team or
//! rotation cascades to rotation members and escalation targets; a team
//! update can empty a team. Every such write takes the advisory lock
//! `hashtext('opsdeck.oncall')` and compares, inside its transaction, the
//! "broken" conditions before and after the change: a rotation without
//! members, or an escalation level none of whose targets reaches anyone (a
//! person, a rotation with members, a team with members). A change that
//! creates a new one is refused with 409 naming it (`cannot delete person
//! "Alice": rotation "Primary" would have no members`). Policy writes are
//! validated directly (a level whose targets are all empty teams is a 400).
//!
//! **Levels** are stored 0-based in list order (`escalation_levels.level` =
//! index in `EscalationPolicy.levels`); messages about a stored level say
//! `L1`, `L2` … like the handbook. A policy has 1–10 levels, delays in
//! seconds from the trigger, the first ≥ 0, non-decreasing, at most 7 days;
//! 1–20 distinct targets per level. One policy at most is the default:
//! saving one with `is_default` unsets the previous default in the same
//! transaction (the partial unique index catches a concurrent race as 409).

pub mod api;
pub mod error;
pub mod rotation;
pub mod store;

pub use error::OncallError;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use chrono_tz::Tz;
use opsdeck_wire::{OnCall, OnCallShift, PersonRef};
use sqlx::PgConnection;

pub use rotation::{on_call, shift_at, Handoff, OverrideSpec, RotationSpec, Shift};

/// A person an escalation level reaches, with how they were reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipient {
    pub person_id: i64,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub chat_handle: Option<String>,
    /// `person`, `rotation <name>` or `team <name>`.
    pub via: String,
}

/// The people level `level` of `policy_id` reaches at `now` (rotations
/// resolved to whoever is on call then, overrides included; teams to their
/// members), deduplicated, in target order. `None` when the policy has no
/// such level.
pub async fn level_recipients(
    conn: &mut PgConnection,
    policy_id: i64,
    level: i32,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<Vec<Recipient>>> {
    if !store::level_exists(&mut *conn, policy_id, level).await? {
        return Ok(None);
    }
    let targets = store::level_targets(&mut *conn, policy_id, level).await?;
    // (person, via) in target order, before deduplication.
    let mut reached: Vec<(i64, String)> = Vec::new();
    for t in &targets {
        if let Some(p) = t.person_id {
            reached.push((p, "person".into()));
        } else if let Some(r) = t.rotation_id {
            let name = t.rotation.clone().unwrap_or_default();
            let specs = rotation_specs(&mut *conn, Some(&[r])).await?;
            let overrides = overrides_of(&mut *conn, &[r], now).await?;
            if let Some(spec) = specs.first() {
                let o = overrides.get(&r).map(Vec::as_slice).unwrap_or_default();
                if let Some(s) = shift_at(&spec.spec, o, now) {
                    reached.push((s.person_id, format!("rotation {name}")));
                }
            }
        } else if let Some(team) = t.team_id {
            let name = t.team.clone().unwrap_or_default();
            let members = store::team_member_ids(&mut *conn, team).await?;
            reached.extend(members.into_iter().map(|p| (p, format!("team {name}"))));
        }
    }
    let mut seen = BTreeSet::new();
    reached.retain(|(p, _)| seen.insert(*p));
    let ids: Vec<i64> = reached.iter().map(|(p, _)| *p).collect();
    let rows = store::contacts(&mut *conn, &ids).await?;
    let mut people: HashMap<i64, store::Contact> = rows.into_iter().map(|r| (r.id, r)).collect();
    Ok(Some(
        reached
            .into_iter()
            .filter_map(|(id, via)| {
                let r = people.remove(&id)?;
                Some(Recipient {
                    person_id: id,
                    name: r.name,
                    email: r.email,
                    phone: r.phone,
                    chat_handle: r.chat_handle,
                    via,
                })
            })
            .collect(),
    ))
}

/// The levels of a policy as `(level, delay_secs)`, ordered by level
/// (empty when the policy does not exist).
pub async fn levels(conn: &mut PgConnection, policy_id: i64) -> sqlx::Result<Vec<(i32, i64)>> {
    let rows = store::levels(conn, policy_id).await?;
    Ok(rows.into_iter().map(|(l, d)| (l, i64::from(d))).collect())
}

/// Who is on call now and next for every rotation, by rotation name.
pub async fn who_is_on_call(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<OnCall>> {
    let specs = rotation_specs(&mut *conn, None).await?;
    let ids: Vec<i64> = specs.iter().map(|s| s.id).collect();
    let overrides = overrides_of(&mut *conn, &ids, now).await?;
    let mut shifts = Vec::with_capacity(specs.len());
    let mut people_ids = BTreeSet::new();
    for s in &specs {
        let o = overrides.get(&s.id).map(Vec::as_slice).unwrap_or_default();
        let (cur, next) = on_call(&s.spec, o, now);
        people_ids.extend(cur.iter().chain(next.iter()).map(|x| x.person_id));
        shifts.push((s.id, s.name.clone(), cur, next));
    }
    let ids: Vec<i64> = people_ids.into_iter().collect();
    let rows = store::phones(&mut *conn, &ids).await?;
    let people: HashMap<i64, (String, Option<String>, Option<String>)> = rows
        .into_iter()
        .map(|(id, n, p, e)| (id, (n, p, e)))
        .collect();
    let wire = |s: Option<Shift>| {
        let s = s?;
        let (name, phone, email) = people.get(&s.person_id)?.clone();
        Some(OnCallShift {
            person: PersonRef {
                id: s.person_id,
                name,
            },
            phone,
            email,
            from: s.from,
            until: s.until,
            is_override: s.override_id.is_some(),
        })
    };
    Ok(shifts
        .into_iter()
        .map(|(id, name, cur, next)| OnCall {
            rotation_id: id,
            rotation: name,
            current: wire(cur),
            next: wire(next),
        })
        .collect())
}

/// A rotation row with its math.
#[derive(Debug, Clone)]
pub(crate) struct LoadedRotation {
    pub id: i64,
    pub name: String,
    pub team_id: Option<i64>,
    pub handoff: String,
    pub handoff_time: NaiveTime,
    pub handoff_weekday: Option<i16>,
    pub time_zone: String,
    pub starts_on: NaiveDate,
    /// Members in turn order.
    pub members: Vec<PersonRef>,
    pub spec: RotationSpec,
}

/// Rotations (all, or these ids) by name, with members in turn order.
pub(crate) async fn rotation_specs(
    conn: &mut PgConnection,
    ids: Option<&[i64]>,
) -> sqlx::Result<Vec<LoadedRotation>> {
    let rows = store::rotations(&mut *conn, ids).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let members = store::rotation_members(&mut *conn, &ids).await?;
    let mut by_rotation: BTreeMap<i64, Vec<PersonRef>> = BTreeMap::new();
    for (r, id, name) in members {
        by_rotation
            .entry(r)
            .or_default()
            .push(PersonRef { id, name });
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let store::RotationRow {
                id,
                name,
                team_id,
                handoff,
                handoff_time,
                handoff_weekday: weekday,
                time_zone,
                starts_on,
            } = r;
            let members = by_rotation.remove(&id).unwrap_or_default();
            let tz = time_zone.parse::<Tz>().unwrap_or_else(|_| {
                tracing::warn!(rotation = %name, zone = %time_zone, "unknown stored time zone; using UTC");
                Tz::UTC
            });
            let kind = match weekday.and_then(rotation::iso_weekday) {
                Some(w) if handoff == "weekly" => Handoff::Weekly(w),
                _ => Handoff::Daily,
            };
            LoadedRotation {
                spec: RotationSpec {
                    handoff: kind,
                    handoff_time,
                    tz,
                    starts_on,
                    members: members.iter().map(|m| m.id).collect(),
                },
                id,
                name,
                team_id,
                handoff,
                handoff_time,
                handoff_weekday: weekday,
                time_zone,
                starts_on,
                members,
            }
        })
        .collect())
}

/// Overrides that can matter at `now` (ending after `now` minus a bit more
/// than the longest override), per rotation, oldest first.
pub(crate) async fn overrides_of(
    conn: &mut PgConnection,
    rotation_ids: &[i64],
    now: DateTime<Utc>,
) -> sqlx::Result<BTreeMap<i64, Vec<OverrideSpec>>> {
    let rows = store::override_specs(conn, rotation_ids, now - TimeDelta::days(400)).await?;
    let mut out: BTreeMap<i64, Vec<OverrideSpec>> = BTreeMap::new();
    for (r, id, person_id, starts_at, ends_at) in rows {
        out.entry(r).or_default().push(OverrideSpec {
            id,
            person_id,
            starts_at,
            ends_at,
        });
    }
    Ok(out)
}

// ------------------------------------------------------------ shared helpers

/// Serialises the writes that can break a rotation or an escalation level.
pub(crate) async fn lock(conn: &mut PgConnection) -> sqlx::Result<()> {
    store::lock(conn).await
}

/// What is broken now: rotations without members, levels reaching nobody.
pub(crate) async fn broken(conn: &mut PgConnection) -> sqlx::Result<BTreeSet<String>> {
    let rows = store::broken(conn).await?;
    Ok(rows.into_iter().collect())
}

/// Refuses (409) when the change made on `conn` broke something that was
/// fine in `before` (see the module documentation).
pub(crate) async fn still_intact(
    conn: &mut PgConnection,
    before: &BTreeSet<String>,
    what: &str,
) -> Result<(), OncallError> {
    let after = broken(conn).await?;
    let new: Vec<&String> = after.difference(before).collect();
    if new.is_empty() {
        return Ok(());
    }
    let list = new
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    Err(OncallError::Conflict(format!("cannot {what}: {list}")))
}
