//! Background work: one mechanism for all of it.
//!
//! * [`lease`]: **durable jobs**, rows of a table claimed with `FOR UPDATE
//!   SKIP LOCKED` under a lease (owner + expiry), renewed by a heartbeat,
//!   reaped when their owner dies, every final write guarded by `WHERE
//!   lease_owner = me`. A table plugs in with [`JobTable`] (its claim,
//!   renew and reap statements and what executing a row means); runs
//!   (`runs`) and the notification outbox (`notifications`) use it.
//! * [`registry`]: **tasks**, each with a name, a timetable (a period, or a
//!   cron expression in a time zone), a scope ([`Scope::EveryProcess`], or
//!   [`Scope::OneProcess`]: a Postgres advisory lock keyed by the task's
//!   name, held on a dedicated connection), one shutdown path
//!   ([`Registry::shutdown`], called when `serve` stops) and a metrics
//!   family per task (`opsdeck_task_runs_total`,
//!   `opsdeck_task_failures_total`, `opsdeck_task_last_duration_seconds`,
//!   `opsdeck_task_leader`, labelled `task`). `serve` adds every task and
//!   starts the registry once; nothing else starts a long-lived loop.
//!
//! **Timers: croner, not tokio-cron-scheduler.** The registry waits with
//! tokio's timer, computing cron occurrences with croner (already the
//! parser of runbook schedules, with its zone and DST rules). The two
//! tokio-cron-scheduler jobs Opsdeck had ticked every second and every
//! minute, doing no calendar work that croner does not; exactly-once comes
//! from Postgres claims (`schedule_ticks`, the report's unique index), not
//! from the scheduler. One timer is simpler than two, so tokio-cron-scheduler
//! is no longer used.
//!
//! Exactly-once where it matters comes from the database, never from the
//! timer: a claimed row, a unique key or a row lock.
//!
//! ## Every background task
//!
//! | task | period | scope | what it does |
//! |---|---|---|---|
//! | `runs.claim` | 1 s, or woken by a new/changed run | every process | claims `queued` runs (up to 64 at once per process) and drives each in its own task |
//! | `runs.heartbeat` | lease / 3 (default 10 s) | every process | renews this process's run leases; stops runs whose lease was lost or that were cancelled |
//! | `runs.reap` | lease / 2 | every process | marks runs whose lease ran out `interrupted`; expires approvals past their deadline |
//! | `notifications.claim` | 500 ms, or woken by a new message | every process | claims due outbox rows (16 at once per process; a row whose lease ran out is claimed again) and sends them |
//! | `schedules` | cron `* * * * * *` (every second, UTC) | every process | queues the runs of due runbook schedules (one run per tick through `schedule_ticks`) |
//! | `escalation` | 1 s (100 ms when a due incident was locked), or woken by a new incident | every process | fires due escalation levels and marks SLA breaches (row locks with `SKIP LOCKED`) |
//! | `detection` | 10 s, or woken by a board change | every process (acts only in the checks leader) | opens, links and marks recovered the automatic health incidents |
//! | `maintenance` | 1 s | every process | starts and ends maintenance periods (row locks) |
//! | `maintenance.marks` | 5 s | every process | reloads the board's maintenance marks and banners |
//! | `backups.sweep` | 5 s | every process | backups left `running` by an ended run become `interrupted` |
//! | `runbooks.bindings` | 5 s | every process | runbooks bound to alerts: starts the automatic bindings' runs for open incidents (once per binding and incident, under the binding's row lock; suppressed in maintenance, limited per hour and by cooldown) and escalates the ones that failed |
//! | `updates.autoheal` | 5 s | every process | auto-heal: queues the service-down runbook for services unhealthy for their N minutes (at most M an hour, then escalates); each decision under the row lock of the service's settings |
//! | `updates.auto` | 30 s | every process | the `auto` update policy: queues `image-update` for a service with an update inside an active maintenance period, one at a time (transaction advisory lock) |
//! | `updates.recover` | 10 s | one process | puts back a good state (old or new container, never none) for image updates an ended run left unfinished (see `updates::recover`) |
//! | `updates.discover` | 1 min (each engine once per `update_check_interval`, default a day, spread by a hash of its id) | one process | asks the registries about the due engines' images (`updates::discover`), writes `image_status`, notifies once per new digest |
//! | `resources.sample` | `resource_sample_interval` (10 s, start to start; `off`: not added) | one process | samples every running container and the host, writes finished minutes (see `resources`) |
//! | `report` | cron `0 * * * * *` (every minute, UTC) | every process | writes the daily check report once its time has passed (one per day: unique index) |
//! | `upkeep` | 10 min | every process | closes actions a crash left running; removes expired sessions |
//! | `checks.leader` | lock held, pinged every 10 s | one process | the process holding it probes the checks; the others follow the `checks` table every 5 s |
//! | `checks.scheduler`, `checks.writer`, `checks.rollups`, `checks.board` | services | every process (probing only in the leader) | the health engine's loops (see `checks::engine`) |
//! | `fanout` | service | every process | the one `LISTEN` connection: hands other processes' changes and events to their owners (see `fanout`) |
//! | `metrics.listener` | service | every process | serves `/metrics` on `metrics_listen` when it is set |

pub mod lease;
pub mod registry;

pub use lease::{Held, JobTable, Lease, Leases, Renewed, Stop};
pub use registry::{Pace, Registry, Scope, Task, TaskMetrics, Wake};
