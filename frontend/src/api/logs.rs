//! Log search: `POST /logs/search`, read as it streams (one JSON event per
//! line) so hits show while the engines are still being read, cancelled by
//! an `AbortSignal`; and the same search as a text file to save.

use gloo_net::http::Request;
use js_sys::{Reflect, Uint8Array};
use opsdeck_wire as w;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, ReadableStreamDefaultReader};

use super::{finish, url, with_body, ApiError};

fn broken(e: impl std::fmt::Debug) -> ApiError {
    ApiError {
        status: 0,
        code: "network".into(),
        message: format!("the search broke off ({e:?})"),
        field: None,
    }
}

/// Runs a search, handing the events of each piece of the answer to
/// `on_events` as it arrives. Returns when the answer ends (its `end`
/// event is the last handed on) or breaks off; an aborted search returns
/// an error with code `aborted`.
pub async fn search(
    q: &w::LogSearch,
    signal: &AbortSignal,
    mut on_events: impl FnMut(Vec<w::LogEvent>),
) -> Result<(), ApiError> {
    let req = with_body(
        Request::post(&url("/logs/search")).abort_signal(Some(signal)),
        q,
    )?;
    let res = finish(req.send().await).await?;
    let body = res.body().ok_or_else(|| broken("no body"))?;
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let chunk = match JsFuture::from(reader.read()).await {
            Ok(c) => c,
            Err(_) if signal.aborted() => {
                return Err(ApiError {
                    status: 0,
                    code: "aborted".into(),
                    message: "cancelled".into(),
                    field: None,
                })
            }
            Err(e) => return Err(broken(e)),
        };
        let done = Reflect::get(&chunk, &"done".into())
            .ok()
            .and_then(|d| d.as_bool())
            .unwrap_or(true);
        if done {
            break;
        }
        let value = Reflect::get(&chunk, &"value".into()).map_err(broken)?;
        pending.extend(Uint8Array::new(&value).to_vec());
        let mut start = 0;
        let mut events = Vec::new();
        while let Some(pos) = pending[start..].iter().position(|b| *b == b'\n') {
            let line = &pending[start..start + pos];
            if let Ok(ev) = serde_json::from_slice::<w::LogEvent>(line) {
                events.push(ev);
            }
            start += pos + 1;
        }
        pending.drain(..start);
        if !events.is_empty() {
            on_events(events);
        }
    }
    Ok(())
}

/// The same search as a text file (`ts container: line`), for saving.
pub async fn download_text(q: &w::LogSearch) -> Result<String, ApiError> {
    let req = with_body(Request::post(&url("/logs/search?format=text")), q)?;
    finish(req.send().await).await?.text().await.map_err(broken)
}
