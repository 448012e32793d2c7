//! The escalation engine (filled in by the incidents work).

use crate::state::AppState;

/// Starts the escalation ticker. Ends when `closed` completes.
pub fn start(state: AppState, closed: impl std::future::Future<Output = ()> + Send + 'static) {
    let _ = (state, closed);
}
