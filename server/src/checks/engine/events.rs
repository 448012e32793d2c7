//! Container checks that follow the engines' events: when a container of a
//! service starts, dies, is killed or OOM-killed, stops, restarts, pauses,
//! is removed or changes health, the container checks of the services it
//! belongs to are probed at once (events within [`EVENT_DEBOUNCE`] of the
//! first are taken together, so a burst probes each check once), instead
//! of at their next due time. The schedule stays as the backstop (an event
//! stream that broke, a missed event).
//!
//! The probe reads the hub's cache, which already holds the event
//! ([`crate::docker::ContainerEvent`] is sent after it is applied), and is
//! recorded like a scheduled one: it goes through the check's damping, so
//! a check with `fail_after: 3` still needs three failing probes (the
//! event brings only the first forward). Only the process holding the
//! checks lease probes; when events were missed (the receiver lagged),
//! every container check is probed.

use tokio::sync::broadcast::error::RecvError;

use super::*;
use crate::docker::ContainerEvent;

/// Events arriving within this long of the first are graded together.
pub const EVENT_DEBOUNCE: Duration = Duration::from_millis(100);

impl HealthHub {
    pub(super) async fn events_task(self: Arc<Self>) {
        let mut rx = self.engines.container_events();
        loop {
            // `None`: events were missed, grade every container check.
            let mut batch: Vec<Option<ContainerEvent>> = match rx.recv().await {
                Ok(e) => vec![Some(e)],
                Err(RecvError::Lagged(_)) => vec![None],
                Err(RecvError::Closed) => return,
            };
            let until = tokio::time::Instant::now() + EVENT_DEBOUNCE;
            loop {
                tokio::select! {
                    r = rx.recv() => match r {
                        Ok(e) => batch.push(Some(e)),
                        Err(RecvError::Lagged(_)) => batch.push(None),
                        Err(RecvError::Closed) => return,
                    },
                    _ = tokio::time::sleep_until(until) => break,
                }
            }
            if !self.is_leader() {
                continue;
            }
            for check in self.container_checks_for(&batch) {
                let hub = self.clone();
                tokio::spawn(async move { hub.run_on_event(check).await });
            }
        }
    }

    /// The enabled container checks of the services the events' containers
    /// belong to.
    fn container_checks_for(&self, batch: &[Option<ContainerEvent>]) -> Vec<Arc<CheckRt>> {
        let every = batch.iter().any(Option::is_none);
        let catalog = read(&self.catalog);
        read(&self.checks)
            .values()
            .filter(|c| c.def.enabled && matches!(c.def.spec, CheckSpec::Container(_)))
            .filter(|c| {
                every
                    || c.def
                        .service_id
                        .and_then(|id| catalog.fields.get(&id))
                        .is_some_and(|f| batch.iter().flatten().any(|e| f.maps_to(&e.container)))
            })
            .cloned()
            .collect()
    }

    async fn run_on_event(self: Arc<Self>, check: Arc<CheckRt>) {
        let Ok(_permit) = self.permits.clone().acquire_owned().await else {
            return;
        };
        self.stats.event_probes.fetch_add(1, Ordering::Relaxed);
        self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let result = self.probe(&check).await;
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        // The check may have been reloaded while it was probed: record into
        // the current runtime.
        let current = read(&self.checks).get(&check.def.id).cloned();
        if let Some(current) = current.filter(|c| c.def.enabled) {
            self.record(&current, result);
        }
    }
}
