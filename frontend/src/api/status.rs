//! The status board and its stream.

use opsdeck_wire as w;

use super::{get, url, ApiError};

pub async fn board() -> Result<w::StatusBoard, ApiError> {
    get(&url("/status")).await
}

/// The status stream (Server-Sent Events).
pub fn events_url() -> String {
    url("/status/events")
}
