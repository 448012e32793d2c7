//! Wire types of the fleet views: the engines overview (one row per
//! engine's host) and the services page read a page at a time.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{CheckStatus, Engine, ServiceOverview};

wire! {
    /// One row of the engines overview (`GET /api/v1/engines/overview`):
    /// the engine, its containers, its host's figures and its services'
    /// pending image updates. Read from caches only: a hung engine never
    /// delays it.
    pub struct EngineOverview {
        pub engine: Engine,
        /// Containers in the cache that are running (`engine.containers`
        /// counts all states).
        pub running: usize,
        /// Services whose containers run on this engine or that name it.
        pub services: usize,
        /// Of those, services whose image has an update (a newer digest for
        /// the tag, or a newer tag their policy allows).
        pub updates: usize,
        pub host: HostFigures,
    }

    /// The latest figures of the host checks naming an engine (or of the
    /// Opsdeck host's own checks for the engine on it); each `None` when no
    /// enabled host check of that kind has a result yet.
    pub struct HostFigures {
        /// The worst settled state of those checks; `None`: no host checks.
        pub status: Option<CheckStatus>,
        pub checks: u32,
        pub cpu_pct: Option<f64>,
        pub memory_pct: Option<f64>,
        /// 1-minute load average per CPU, in percent.
        pub load_pct: Option<f64>,
        /// The fullest filesystem among the disk and inode checks.
        pub disk: Option<DiskUse>,
        pub uptime_s: Option<f64>,
        /// When the newest of these results was read.
        pub at: Option<DateTime<Utc>>,
    }

    /// A filesystem's use: the mount point and the larger of its block and
    /// inode use.
    pub struct DiskUse {
        pub path: String,
        pub pct: f64,
        /// Which of the two it is: `disk` or `inodes`.
        pub kind: String,
    }

    /// One page of the services page (`GET /api/v1/services/page`), in the
    /// page's order: tier (critical first), then name.
    pub struct ServicePage {
        pub items: Vec<ServiceOverview>,
        /// Every service.
        pub total: usize,
        /// Services matching the search and filter (what the pages cover).
        pub matched: usize,
        /// Services with a problem run state, of all.
        pub problems: usize,
        pub offset: usize,
        pub limit: usize,
    }
}
