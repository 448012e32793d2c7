//! `POST /ack/{token}`: the confirmation form of an acknowledge link.
//! Notify checks and consumes the link ([`crate::notify::acklink::take`]);
//! the incident is acknowledged here, in the same transaction.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::notify::acklink::{check, take, token_ok, view, IncidentView, LinkState, Taken};
use crate::notify::api::acklink::{failure_page, refused_page, render, AckPage, FOOTER};
use crate::state::AppState;

/// `POST /ack/{token}` (the confirmation form): consumes the link and
/// acknowledges the incident.
pub async fn confirm(
    State(state): State<AppState>,
    axum::extract::Path(token): axum::extract::Path<String>,
) -> Response {
    if !token_ok(&token) {
        return refused_page(&LinkState::Invalid);
    }
    match consume(&state, &token).await {
        Ok(Consumed::Refused(s)) => refused_page(&s),
        Ok(Consumed::Done {
            incident,
            acknowledged,
            who,
        }) => {
            let message = if acknowledged {
                format!("Acknowledged by {who}. Escalation has stopped.")
            } else {
                match &incident.acknowledged_by {
                    Some(by) if incident.status == "acknowledged" => {
                        format!("Already acknowledged by {by}; nothing changed.")
                    }
                    _ => format!(
                        "This incident is already {}; nothing changed.",
                        incident.status
                    ),
                }
            };
            render(
                StatusCode::OK,
                AckPage {
                    heading: if acknowledged {
                        "Incident acknowledged".into()
                    } else {
                        "Nothing to acknowledge".into()
                    },
                    class: "ok",
                    state: if acknowledged {
                        "acknowledged"
                    } else {
                        "not_triggered"
                    },
                    message,
                    incident: Some(incident),
                    action: None,
                    footer: FOOTER,
                },
            )
        }
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "acknowledging by link failed");
            failure_page()
        }
    }
}

enum Consumed {
    Refused(LinkState),
    Done {
        incident: IncidentView,
        acknowledged: bool,
        who: String,
    },
}

async fn consume(state: &AppState, token: &str) -> anyhow::Result<Consumed> {
    let mut tx = state.pool.begin().await?;
    let (incident_id, who) = match take(&mut tx, token).await? {
        Taken::Won { incident_id, who } => (incident_id, who),
        Taken::Refused(s) => return Ok(Consumed::Refused(s)),
        Taken::Raced => {
            drop(tx);
            let mut conn = state.pool.acquire().await?;
            let now = check(&mut conn, token).await?;
            return Ok(Consumed::Refused(match now {
                LinkState::Valid { incident, .. } => LinkState::Used(Some(incident)),
                other => other,
            }));
        }
    };
    let acknowledged = crate::incidents::acknowledge_via_link(&mut tx, incident_id, &who).await?;
    let incident = view(&mut tx, incident_id).await?;
    tx.commit().await?;
    Ok(Consumed::Done {
        incident,
        acknowledged,
        who,
    })
}
