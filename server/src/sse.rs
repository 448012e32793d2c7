//! Server-sent events plumbing shared by the live pages (runs, incidents):
//! a stream fed by a task. A low module so capabilities can use it without
//! importing each other.

use std::convert::Infallible;

use axum::response::sse::Event;

/// A stream fed by a task through a bounded channel.
pub fn async_stream<F, Fut>(f: F) -> impl futures::Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(f(tx));
    futures::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
    )
}
