//! Docker clean-up per engine: disk usage (`system df`), the preview of
//! exactly what a clean-up would remove (and what it keeps, with why), and
//! the run that applies a preview.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

wire! {
    /// One kind of object in an engine's disk usage.
    pub struct DiskUsageKind {
        /// `images`, `containers`, `volumes` or `build_cache`.
        pub kind: String,
        pub count: u64,
        pub size_bytes: i64,
        /// What removing the unused ones would free.
        pub reclaimable_bytes: i64,
    }

    /// An engine's disk usage (`GET /api/v1/engines/{id}/disk`).
    pub struct DiskUsage {
        pub engine_id: i64,
        pub engine: String,
        pub kinds: Vec<DiskUsageKind>,
    }

    /// What a clean-up should consider (`POST /api/v1/engines/{id}/cleanup/preview`).
    #[derive(Default)]
    pub struct CleanupRequest {
        /// Images without a tag that no container uses.
        #[serde(default)]
        pub dangling_images: bool,
        /// Images no container uses, created more than this many days ago (1–3650).
        #[serde(default)]
        pub unused_images_older_than_days: Option<u32>,
        /// Stopped containers that belong to no service of the inventory.
        #[serde(default)]
        pub stopped_containers: bool,
        /// Volumes no container uses (never one a backup plan names).
        #[serde(default)]
        pub volumes: bool,
    }

    /// One object a clean-up removes (or keeps).
    pub struct CleanupItem {
        /// `image`, `container` or `volume`.
        pub kind: String,
        /// The engine's id of it (a volume's name).
        pub id: String,
        /// Its tags, its container name or its volume name.
        pub name: String,
        pub size_bytes: i64,
        /// Why it is removed (or kept).
        pub reason: String,
    }

    /// A clean-up preview: exactly what a clean-up would remove.
    pub struct CleanupPreview {
        pub id: i64,
        pub engine_id: i64,
        pub request: CleanupRequest,
        /// What the clean-up removes.
        pub items: Vec<CleanupItem>,
        /// What matched the request but is kept, each with why.
        #[serde(default)]
        pub kept: Vec<CleanupItem>,
        /// The sum of the items' sizes.
        pub total_bytes: i64,
        pub created_by: String,
        pub created_at: DateTime<Utc>,
        /// The run that applied it (one run per preview).
        pub run_id: Option<i64>,
    }

    /// Apply a preview (`POST /api/v1/engines/{id}/cleanup`).
    pub struct CleanupApply {
        pub preview_id: i64,
    }

    /// The `docker-cleanup` run that applies a preview.
    pub struct CleanupStarted {
        pub run_id: i64,
    }
}
