//! The `image` step kind: pull, recreate with the same configuration,
//! health gate, automatic rollback.

use futures::future::BoxFuture;
use opsdeck_wire::StepAction;

use crate::runbooks::step::{StepCx, StepKind, StepResult};

/// The `image` step kind, registered with the runbook engine at start-up.
pub struct ImageStep;

impl StepKind for ImageStep {
    fn kind(&self) -> &'static str {
        "image"
    }

    fn execute<'a>(
        &'a self,
        _cx: &'a StepCx<'a>,
        action: &'a StepAction,
    ) -> BoxFuture<'a, StepResult> {
        Box::pin(async move {
            match action {
                StepAction::Image { .. } => Err("image updates are not built yet".into()),
                other => Err(format!("not an image step: {}", other.kind())),
            }
        })
    }
}
