//! The step API other capabilities build on: what a step runs with
//! ([`StepCx`]), what it returns ([`StepResult`]), and the [`StepKind`]
//! trait through which capabilities below the runbook engine (backups,
//! maintenance) add their step kinds. They are registered at start-up
//! (`AppState::new`) into [`StepKinds`]; the engine looks a step's kind up
//! there before its own kinds, so `runbooks` never imports them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use opsdeck_wire::StepAction;
use serde_json::Value;

use super::output::Output;
use crate::audit::Actor;
use crate::state::AppState;

/// What a step runs with.
pub struct StepCx<'a> {
    pub state: &'a AppState,
    /// The run the step belongs to.
    pub run_id: i64,
    pub actor: &'a Actor,
    pub out: &'a Output,
    /// The step's timeout (the engine enforces it; kinds that wait use it
    /// to pace themselves).
    pub timeout: Duration,
}

/// A step's named outputs, or why it failed.
pub type StepResult = Result<Value, String>;

/// A step kind a capability adds to the runbook engine.
pub trait StepKind: Send + Sync + 'static {
    /// The kind it executes (`StepAction::kind()`, e.g. `backup`).
    fn kind(&self) -> &'static str;

    /// Runs one step of this kind (the engine enforces the timeout, writes
    /// the result and streams `cx.out`).
    fn execute<'a>(
        &'a self,
        cx: &'a StepCx<'a>,
        action: &'a StepAction,
    ) -> BoxFuture<'a, StepResult>;
}

/// The step kinds registered at start-up, by kind.
#[derive(Default)]
pub struct StepKinds {
    kinds: HashMap<&'static str, Arc<dyn StepKind>>,
}

impl StepKinds {
    /// Registers a kind (a second registration of a kind replaces the first).
    pub fn add(&mut self, kind: impl StepKind) {
        self.kinds.insert(kind.kind(), Arc::new(kind));
    }

    /// The registered handler of a kind.
    pub fn get(&self, kind: &str) -> Option<Arc<dyn StepKind>> {
        self.kinds.get(kind).cloned()
    }
}
