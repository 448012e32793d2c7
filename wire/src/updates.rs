//! Image updates, version history, auto-heal and Docker clean-up.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

wire! {
    /// What a service's image registry says (`GET /api/v1/updates`).
    pub struct ImageStatus {
        pub service_id: i64,
        pub service: String,
        /// The image reference the containers were created from.
        pub image_ref: String,
        /// The digest the running image came from, when known.
        pub running_digest: Option<String>,
        /// The registry's current digest for the tag.
        pub latest_digest: Option<String>,
        /// When the registry's image was created, where it says.
        pub latest_created: Option<DateTime<Utc>>,
        /// The tag moved: `latest_digest` differs from `running_digest`.
        pub update_available: bool,
        /// Newer semver tags the service's `moves` allow, newest first.
        #[serde(default)]
        pub newer_tags: Vec<String>,
        /// Built locally: no registry to ask.
        pub local_only: bool,
        /// The registry's error (unreachable, unauthorised, rate limited).
        pub error: Option<String>,
        pub checked_at: DateTime<Utc>,
    }

    /// What `POST /api/v1/updates/check` checks: these services, or every
    /// service with containers when `service_ids` is absent.
    pub struct UpdateCheck {
        #[serde(default)]
        pub service_ids: Option<Vec<i64>>,
    }

    /// A service's update settings (`GET/PUT /api/v1/services/{id}/update-settings`).
    pub struct UpdateSettings {
        pub policy: UpdatePolicy,
        pub moves: SemverMoves,
        /// How long the health gate waits for the updated service (5–3600 s).
        pub gate_seconds: u32,
        /// Auto-heal: restart when unhealthy for this many minutes (None: off).
        pub heal_after_minutes: Option<u32>,
        /// Auto-heal: at most this many restarts an hour, then escalate.
        pub heal_max_per_hour: u32,
    }

    /// One version a service ran (`GET /api/v1/services/{id}/image-versions`).
    pub struct ImageVersion {
        pub id: i64,
        pub service_id: i64,
        pub image_ref: String,
        pub digest: Option<String>,
        pub image_id: String,
        pub started_at: DateTime<Utc>,
        pub ended_at: Option<DateTime<Utc>>,
        pub run_id: Option<i64>,
        pub actor: String,
        /// running, confirmed, rolled_back, interrupted or observed.
        pub outcome: String,
    }
}

/// What happens when a service's image has an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UpdatePolicy {
    /// Never offered, never notified.
    None,
    /// Shown and notified once per new image; updated by a person.
    #[default]
    Notify,
    /// Updated by itself inside a maintenance window, one stack at a time.
    Auto,
}

/// Which moves to a newer semver tag are offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SemverMoves {
    None,
    #[default]
    Patch,
    Minor,
    Any,
}
