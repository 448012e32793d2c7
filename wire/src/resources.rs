//! Resource history (CPU, memory, network, disk) per service, engine and
//! host, its forecasts and the monthly capacity report.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

wire! {
    /// One bucket (a minute or an hour) of a resource series. CPU is in
    /// percent of one core (100 = one core busy); memory and disk in bytes;
    /// network and block I/O in bytes per second over the bucket.
    pub struct ResourcePoint {
        /// Start of the bucket.
        pub at: DateTime<Utc>,
        /// Samples added into the bucket.
        pub samples: u32,
        pub cpu_avg: Option<f64>,
        pub cpu_max: Option<f64>,
        pub mem_avg: Option<f64>,
        pub mem_max: Option<i64>,
        pub mem_limit: Option<i64>,
        pub net_rx_bps: f64,
        pub net_tx_bps: f64,
        pub blk_read_bps: f64,
        pub blk_write_bps: f64,
        /// Mounts: bytes used (largest in the bucket) and the size.
        pub disk_used: Option<i64>,
        pub disk_total: Option<i64>,
    }

    /// One series: a service, an engine (all its containers), the Opsdeck
    /// host, or one of its mounts.
    pub struct ResourceSeries {
        /// `service`, `engine`, `host` or `mount`.
        pub kind: String,
        /// What the page shows: the service's or engine's name, `host`, or
        /// the mount point.
        pub label: String,
        pub points: Vec<ResourcePoint>,
    }

    /// `GET /api/v1/services/{id}/resources`, `GET /api/v1/hosts/local/resources`.
    pub struct ResourceHistory {
        /// `day`, `week` or `month`.
        pub range: String,
        /// `minute` (day) or `hour` (week, month).
        pub resolution: String,
        /// How often the sampler runs, in seconds; `None` when it is off.
        pub sample_interval_s: Option<u32>,
        pub series: Vec<ResourceSeries>,
        /// The forecasts of this subject's capacity (disk per mount, memory).
        #[serde(default)]
        pub forecasts: Vec<Forecast>,
    }

    /// A least-squares forecast of one resource on its hourly series.
    pub struct Forecast {
        /// `disk` (a mount of the host) or `memory` (a service, or the host).
        pub resource: String,
        /// `service`, `host` or `mount`.
        pub kind: String,
        pub service_id: Option<i64>,
        /// The mount point, for disk.
        pub mount: Option<String>,
        /// "disk /var" or "memory of web".
        pub label: String,
        /// The latest hourly value, bytes.
        pub used: f64,
        /// What "full" means: the mount's size or the memory limit, bytes.
        pub capacity: f64,
        /// Growth in bytes per day (negative: shrinking).
        pub slope_per_day: f64,
        /// Days until `used` reaches `capacity` at that rate; `None` when it
        /// never does (flat or shrinking).
        pub days_to_full: Option<f64>,
        /// Fit quality, R² (0–1).
        pub r2: f64,
        /// Hourly points the fit used.
        pub points: u32,
        /// Days of history the fit covers (at most the window).
        pub span_days: f64,
    }

    /// `GET /api/v1/resources/forecasts`: what fills up within `within_days`.
    pub struct ForecastList {
        pub within_days: f64,
        pub window_days: u32,
        pub items: Vec<Forecast>,
    }

    /// One line of the capacity report.
    pub struct CapacityRow {
        /// `service`, `engine`, `host` or `mount`.
        pub kind: String,
        pub service_id: Option<i64>,
        pub label: String,
        pub cpu_avg: Option<f64>,
        pub cpu_peak: Option<f64>,
        pub mem_avg: Option<f64>,
        pub mem_peak: Option<i64>,
        pub mem_limit: Option<i64>,
        /// Mounts: used at the end of the month, its growth over the month
        /// (bytes) and the size.
        pub disk_used: Option<i64>,
        pub disk_growth: Option<i64>,
        pub disk_total: Option<i64>,
        /// Previous month's averages, for the change.
        pub prev_cpu_avg: Option<f64>,
        pub prev_mem_avg: Option<f64>,
        /// Month-over-month change of the average memory (services, host)
        /// or of disk used (mounts), percent; `None` without a previous month.
        pub change_pct: Option<f64>,
        /// What the ranking uses: disk growth as a share of the size
        /// (mounts) or the change of average memory (others), percent.
        pub growth_pct: Option<f64>,
        pub hours: u32,
    }

    /// `GET /api/v1/reports/capacity?month=YYYY-MM`: the month's averages
    /// and peaks, top growers first.
    pub struct CapacityReport {
        pub month: String,
        pub generated_at: DateTime<Utc>,
        /// The rows with the largest growth (at most 5, growth > 0).
        pub top_growers: Vec<CapacityRow>,
        /// Every row, by growth (largest first), then name.
        pub rows: Vec<CapacityRow>,
    }
}
