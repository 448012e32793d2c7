//! The built-in database catalogue of the runbook `database` step.

use serde::{Deserialize, Serialize};

/// The database catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DbOp {
    /// Postgres: client connections by state.
    ConnectionCounts,
    /// Postgres: terminate connections idle for longer than `older_than`.
    TerminateIdle,
    /// Postgres: terminate queries active for longer than `older_than`.
    TerminateActive,
    /// Postgres: blocked and blocking sessions.
    BlockingLocks,
    /// Postgres: `VACUUM (ANALYZE)` of the database or of `table`.
    VacuumAnalyze,
    /// Postgres: `REINDEX TABLE table` (or the whole database).
    Reindex,
    /// Postgres: cache hit ratio.
    CacheHitRatio,
    /// Postgres: top queries by total time (pg_stat_statements, when installed).
    TopQueries,
    /// Postgres: promote a standby (`pg_promote()`).
    Promote,
    /// MariaDB/MySQL: `SHOW FULL PROCESSLIST`.
    ProcessList,
    /// MariaDB/MySQL: `Threads_connected`.
    ThreadsConnected,
}

impl DbOp {
    pub fn as_str(self) -> &'static str {
        match self {
            DbOp::ConnectionCounts => "connection_counts",
            DbOp::TerminateIdle => "terminate_idle",
            DbOp::TerminateActive => "terminate_active",
            DbOp::BlockingLocks => "blocking_locks",
            DbOp::VacuumAnalyze => "vacuum_analyze",
            DbOp::Reindex => "reindex",
            DbOp::CacheHitRatio => "cache_hit_ratio",
            DbOp::TopQueries => "top_queries",
            DbOp::Promote => "promote",
            DbOp::ProcessList => "process_list",
            DbOp::ThreadsConnected => "threads_connected",
        }
    }
}
