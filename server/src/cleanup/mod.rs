//! Docker clean-up per engine (the handbooks' weekly `docker system
//! prune`): disk usage (`system df`), a preview of exactly what would be
//! removed, and the `cleanup` step kind that removes exactly the previewed
//! items behind the `prune` approval policy (built-in `docker-cleanup`).

use futures::future::BoxFuture;
use opsdeck_wire::StepAction;

use crate::runbooks::step::{StepCx, StepKind, StepResult};

/// The `cleanup` step kind, registered with the runbook engine at start-up.
pub struct CleanupStep;

impl StepKind for CleanupStep {
    fn kind(&self) -> &'static str {
        "cleanup"
    }

    fn execute<'a>(
        &'a self,
        _cx: &'a StepCx<'a>,
        action: &'a StepAction,
    ) -> BoxFuture<'a, StepResult> {
        Box::pin(async move {
            match action {
                StepAction::Cleanup { .. } => Err("clean-up is not built yet".into()),
                other => Err(format!("not a cleanup step: {}", other.kind())),
            }
        })
    }
}
