//! Containers as the engine lists them (not the cache): every one, those
//! carrying a label, or those mounting a volume. For callers that must ask
//! the engine itself, e.g. which containers use a volume before a restore.

use std::collections::HashMap;

use anyhow::Context;
use bollard::query_parameters::ListContainersOptionsBuilder;

use super::ops::engine_error;
use super::{Client, REQUEST_TIMEOUT};

/// Which containers to list (all states, running or not).
#[derive(Debug, Clone, Copy)]
pub enum ListBy<'a> {
    All,
    /// Those carrying this label (any value).
    Label(&'a str),
    /// Those mounting this volume.
    Volume(&'a str),
}

/// One listed container.
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: String,
    /// Creation time, Unix seconds.
    pub created: Option<i64>,
    pub labels: HashMap<String, String>,
}

/// The containers `by` selects, within three request timeouts (a long list
/// on a busy engine takes a while).
pub async fn containers(client: &Client, by: ListBy<'_>) -> anyhow::Result<Vec<Listed>> {
    let mut filters: HashMap<&str, Vec<&str>> = HashMap::new();
    match by {
        ListBy::All => {}
        ListBy::Label(l) => {
            filters.insert("label", vec![l]);
        }
        ListBy::Volume(v) => {
            filters.insert("volume", vec![v]);
        }
    }
    let mut options = ListContainersOptionsBuilder::default().all(true);
    if !filters.is_empty() {
        options = options.filters(&filters);
    }
    let options = options.build();
    let list = tokio::time::timeout(
        REQUEST_TIMEOUT * 3,
        client.inner.list_containers(Some(options)),
    )
    .await
    .map_err(|_| anyhow::anyhow!("listing containers: no answer in time"))?
    .map_err(engine_error)
    .context("listing containers")?;
    Ok(list
        .into_iter()
        .filter_map(|c| {
            Some(Listed {
                id: c.id?,
                created: c.created,
                labels: c.labels.unwrap_or_default(),
            })
        })
        .collect())
}
