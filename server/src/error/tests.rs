//! Tests of the error shapes and their mapping.

use super::*;

#[test]
fn nul_characters_are_found_with_their_path() {
    assert_eq!(
        nul_field(br#"{"name":"a\u0000b"}"#).as_deref(),
        Some("name")
    );
    assert_eq!(
        nul_field(br#"{"argv":["ls","x\u0000"]}"#).as_deref(),
        Some("argv[1]")
    );
    assert_eq!(
        nul_field(br#"{"params":{"host":"\u0000"}}"#).as_deref(),
        Some("params.host")
    );
    // An escaped backslash followed by "u0000" is text, not NUL.
    assert_eq!(nul_field(br#"{"name":"a\\u0000"}"#), None);
    assert_eq!(nul_field(br#"{"name":"plain"}"#), None);
}

#[test]
fn a_database_outage_deep_in_a_chain_answers_503() {
    let e = anyhow::Error::new(sqlx::Error::PoolTimedOut).context("loading the incident");
    let r = ApiError::Internal(e).into_response();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let r = ApiError::from(sqlx::Error::PoolClosed).into_response();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    // A bug stays a 500.
    let e = anyhow::anyhow!("something else broke");
    let r = ApiError::Internal(e).into_response();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let r = ApiError::from(sqlx::Error::RowNotFound).into_response();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

async fn body_of(e: ApiError) -> (StatusCode, serde_json::Value) {
    let r = e.into_response();
    let status = r.status();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn a_field_error_names_the_field_and_keeps_the_message() {
    let (status, body) = body_of(ApiError::invalid_field("interval_s", "5 s to 1 day")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        serde_json::json!({"error": {
            "code": "invalid_input",
            "message": "interval_s: 5 s to 1 day",
            "field": "interval_s",
        }})
    );
    // Without a field, the body has no `field` at all.
    let (_, body) = body_of(ApiError::BadRequest("bad".into())).await;
    assert_eq!(
        body,
        serde_json::json!({"error": {"code": "invalid_input", "message": "bad"}})
    );
}

#[test]
fn validator_text_names_its_field() {
    let field = |m: &str| match ApiError::from_validation(m.into()) {
        ApiError::InvalidField { field, message } => {
            assert_eq!(message, m);
            Some(field)
        }
        ApiError::BadRequest(message) => {
            assert_eq!(message, m);
            None
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(field("url: must be http(s)").as_deref(), Some("url"));
    assert_eq!(
        field("levels[1].targets[0]: no person with id 7").as_deref(),
        Some("levels[1].targets[0]")
    );
    assert_eq!(
        field("restarts_warning/restarts_critical: need 0 < warning < critical").as_deref(),
        Some("restarts_warning/restarts_critical")
    );
    assert_eq!(field("Something went wrong: try again"), None);
    assert_eq!(field("no colon here"), None);
}
