//! The status board and its stream.

use opsdeck_wire as w;

use super::{get, url, ApiError};

pub async fn board() -> Result<w::StatusBoard, ApiError> {
    get(&url("/status")).await
}

/// The board's first screen: each tier's first `n` services, worst first
/// (`tier_totals` says how many there are).
pub async fn first_screen(n: usize) -> Result<w::StatusBoard, ApiError> {
    get(&url(&format!("/status?first={n}"))).await
}

/// The status stream (Server-Sent Events).
pub fn events_url() -> String {
    url("/status/events")
}
