//! Channels through the API: validation, audit, admin only, the link-local
//! setting.

use super::*;

#[tokio::test]
async fn channels_are_validated_audited_and_admin_only() {
    let s = quiet().await;
    let admin = s.user(Role::Admin).await;
    let rx = Receiver::start().await;
    let hook = rx.url("/hooks/T000/B000/credential-path");

    // Validation at the boundary, one field named per message.
    for (body, field) in [
        (
            json!({"name": "x", "kind": "pager", "config": {"url": hook}}),
            "kind",
        ),
        (
            json!({"name": "", "kind": "webhook", "config": {"url": hook}}),
            "name",
        ),
        (json!({"name": "x", "kind": "webhook", "config": {}}), "url"),
        (
            json!({"name": "x", "kind": "slack", "config": {"url": "file:///etc/passwd"}}),
            "url",
        ),
        (
            json!({"name": "x", "kind": "webhook", "config": {"url": "ftp://example.com/x"}}),
            "url",
        ),
        (
            json!({"name": "x", "kind": "webhook", "config": {"url": "http://user:pw@127.0.0.1/"}}),
            "url",
        ),
        (
            json!({"name": "x", "kind": "webhook", "config": {"url": "http://169.254.169.254/latest/meta-data/"}}),
            "url",
        ),
        (
            json!({"name": "x", "kind": "teams", "config": {"url": "http://[fe80::1]/"}}),
            "url",
        ),
        (
            json!({"name": "x", "kind": "sms", "config": {"url": "http://[::ffff:169.254.169.254]/"}}),
            "url",
        ),
        (
            json!({"name": "x", "kind": "webhook", "config": {"url": "http://metadata.google.internal/computeMetadata/v1/"}}),
            "url",
        ),
        (
            json!({"name": "x", "kind": "email", "config": {"from": "ops@example.com"}}),
            "smtp_host",
        ),
        (
            json!({"name": "x", "kind": "email", "config": {"smtp_host": "169.254.169.254", "from": "ops@example.com"}}),
            "smtp_host",
        ),
        (
            json!({"name": "x", "kind": "email", "config": {"smtp_host": "127.0.0.1", "smtp_tls": "ssl", "from": "ops@example.com"}}),
            "smtp_tls",
        ),
        (
            json!({"name": "x", "kind": "email", "config": {"smtp_host": "127.0.0.1", "from": "not an address"}}),
            "from",
        ),
        (
            json!({"name": "x", "kind": "email", "config": {"smtp_host": "127.0.0.1"}}),
            "from",
        ),
    ] {
        let msg = expect_error(admin.post("/api/v1/channels", &body).await, 400).await;
        assert!(
            msg.starts_with(field),
            "{body}: expected a message about {field}, got {msg}"
        );
        assert!(
            !msg.contains("credential-path"),
            "messages never echo the URL path: {msg}"
        );
    }
    let msg = expect_error(
        admin
            .post(
                "/api/v1/channels",
                &json!({"name": "x", "kind": "webhook", "config": {"url": "http://169.254.169.254/"}}),
            )
            .await,
        400,
    )
    .await;
    assert!(msg.contains("metadata"), "{msg}");

    // Loopback is accepted (self-hosted receivers live there).
    let c = add_channel(
        &admin,
        json!({"name": "ops-hook", "kind": "webhook", "config": {"url": hook},
               "secret": "s3cret-hmac-key", "severities": ["P2", "P1", "P2"]}),
    )
    .await;
    assert_eq!(c.kind, "webhook");
    assert!(c.has_secret && c.enabled);
    assert_eq!(c.severities, vec![Severity::P1, Severity::P2]);
    let text = admin
        .get(&format!("/api/v1/channels/{}", c.id))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !text.contains("s3cret"),
        "the secret is never returned: {text}"
    );
    assert!(text.contains("\"has_secret\":true"), "{text}");
    let mail = add_channel(
        &admin,
        json!({"name": "ops-mail", "kind": "email",
               "config": {"smtp_host": "127.0.0.1", "smtp_tls": "none", "from": "Opsdeck <opsdeck@example.com>"},
               "severities": ["P1"]}),
    )
    .await;
    assert_eq!(
        mail.config.smtp_port,
        Some(25),
        "the port defaults by TLS mode"
    );
    assert_eq!(mail.config.url, None);

    // Unique names.
    expect_error(
        admin
            .post(
                "/api/v1/channels",
                &json!({"name": "ops-hook", "kind": "slack", "config": {"url": hook}}),
            )
            .await,
        409,
    )
    .await;

    // Update: the secret is kept unless given, "" clears it.
    let cid = c.id;
    let put = |body: Value| {
        let admin = admin.clone();
        async move {
            ok_json::<Channel>(
                admin
                    .send(Method::PUT, &format!("/api/v1/channels/{cid}"), &body)
                    .await,
                "update channel",
            )
            .await
        }
    };
    let kept = put(
        json!({"name": "ops-hook", "kind": "webhook", "config": {"url": hook},
                          "enabled": false, "severities": ["P3"]}),
    )
    .await;
    assert!(kept.has_secret && !kept.enabled);
    assert_eq!(kept.severities, vec![Severity::P3]);
    let rules: Vec<i16> =
        sqlx::query_scalar("SELECT severity FROM channel_rules WHERE channel_id = $1")
            .bind(c.id)
            .fetch_all(&s.pool)
            .await
            .unwrap();
    assert_eq!(rules, vec![3], "severities are channel_rules rows");
    let cleared = put(
        json!({"name": "ops-hook", "kind": "webhook", "config": {"url": hook},
                             "secret": "", "severities": ["P3"]}),
    )
    .await;
    assert!(!cleared.has_secret);
    expect_error(
        admin
            .send(
                Method::PUT,
                &format!("/api/v1/channels/{}", c.id),
                &json!({"name": "ops-hook", "kind": "webhook", "config": {"url": "gopher://x"}}),
            )
            .await,
        400,
    )
    .await;
    expect_error(
        admin
            .send(
                Method::PUT,
                "/api/v1/channels/999999",
                &json!({"name": "nope", "kind": "webhook", "config": {"url": hook}}),
            )
            .await,
        404,
    )
    .await;

    // Roles: channels are admin-only; the outbox list is for viewers too.
    for role in [Role::Operator, Role::Viewer] {
        let api = s.user(role).await;
        expect_error(api.get("/api/v1/channels").await, 403).await;
        expect_error(api.get(&format!("/api/v1/channels/{}", c.id)).await, 403).await;
        expect_error(
            api.post(
                "/api/v1/channels",
                &json!({"name": "sneaky", "kind": "webhook", "config": {"url": hook}}),
            )
            .await,
            403,
        )
        .await;
        expect_error(
            api.send(
                Method::PUT,
                &format!("/api/v1/channels/{}", c.id),
                &json!({"name": "x", "kind": "webhook", "config": {"url": hook}}),
            )
            .await,
            403,
        )
        .await;
        expect_error(api.delete(&format!("/api/v1/channels/{}", c.id)).await, 403).await;
        expect_error(
            api.post(&format!("/api/v1/channels/{}/test", c.id), &json!({}))
                .await,
            403,
        )
        .await;
        let _: Vec<Notification> = api.json("/api/v1/notifications").await;
    }
    assert!(
        rx.requests().is_empty(),
        "nothing was sent by refused requests"
    );

    // Delete.
    let res = admin.delete(&format!("/api/v1/channels/{}", mail.id)).await;
    assert_eq!(res.status(), 204);
    expect_error(
        admin.get(&format!("/api/v1/channels/{}", mail.id)).await,
        404,
    )
    .await;
    expect_error(
        admin.delete(&format!("/api/v1/channels/{}", mail.id)).await,
        404,
    )
    .await;
    let list: Vec<Channel> = admin.json("/api/v1/channels").await;
    assert_eq!(list.len(), 1);

    // Audit: every change, never the URL or the secret.
    let page = audit(&admin, "channel.").await;
    let actions: Vec<&str> = page.entries.iter().map(|e| e.action.as_str()).collect();
    for want in ["channel.create", "channel.update", "channel.delete"] {
        assert!(actions.contains(&want), "{want} in {actions:?}");
    }
    let all = serde_json::to_string(&page.entries).unwrap();
    assert!(
        !all.contains("credential-path") && !all.contains("s3cret"),
        "{all}"
    );
    assert!(page
        .entries
        .iter()
        .filter(|e| e.action == "channel.create")
        .all(|e| e.params["severities"].is_array() && e.params["kind"].is_string()));
    let unaudited = audit(&admin, "request.unaudited").await;
    assert!(unaudited.entries.is_empty(), "{:?}", unaudited.entries);
}

#[tokio::test]
async fn the_link_local_setting_lifts_the_refusal_at_save_time() {
    let s = TestServer::start_with(|s| {
        s.schedules = false;
        s.escalations = false;
        s.notify_allow_link_local = true;
    })
    .await;
    let admin = s.user(Role::Admin).await;
    add_channel(
        &admin,
        json!({"name": "metadata-proxy", "kind": "webhook",
               "config": {"url": "http://169.254.169.254/hook"}}),
    )
    .await;
    // Never the unspecified address or other schemes.
    expect_error(
        admin
            .post(
                "/api/v1/channels",
                &json!({"name": "x", "kind": "webhook", "config": {"url": "http://0.0.0.0/"}}),
            )
            .await,
        400,
    )
    .await;
}
