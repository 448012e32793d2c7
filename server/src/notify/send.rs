//! Delivering one message through one channel, per kind.
//!
//! * **webhook**: `POST` of JSON
//!   `{"event", "notification_id", "severity", "incident": {id, title,
//!   severity, status, url} | null, "run_id", "subject", "text", "ack_url",
//!   "sent_at"}` with `X-Opsdeck-Timestamp: <unix seconds>` and, when the
//!   channel has a secret, `X-Opsdeck-Signature: sha256=<hex>`: the
//!   HMAC-SHA256 with the secret as key of `"<timestamp>.<raw body>"`. A
//!   receiver verifies it by computing the same HMAC over the timestamp
//!   header, a dot and the exact bytes of the body, comparing in constant
//!   time, and refusing timestamps more than a few minutes old (replays).
//! * **slack**: Slack-compatible incoming webhook `{"text", "blocks"}`:
//!   the message as mrkdwn (`&`, `<`, `>` escaped; recipients' chat handles
//!   as `@handle`) and link buttons "Acknowledge" and "Open in Opsdeck".
//! * **teams**: an Office 365 connector `MessageCard` (`themeColor` by
//!   severity, title, text, `OpenUri` actions "Acknowledge" and "Open in
//!   Opsdeck").
//! * **sms**: `POST {"to", "message"}` to the gateway URL (a short text with
//!   the acknowledge URL), `Authorization: Bearer <secret>` when a secret is
//!   set.
//! * **email**: SMTP with lettre (TLS `none`, `starttls` or implicit `tls`;
//!   login with `smtp_username` and the secret), multipart plain text + HTML
//!   rendered by the askama templates `notify_email.{txt,html}` (data only:
//!   no user-supplied template code ever reaches a template engine).
//!
//! Every outbound address passes [`super::guard`] first. Results and errors
//! name the target's host, never its URL (chat webhook URLs are
//! credentials) and never a secret.

use std::time::Duration;

use askama::Template;
use chrono::Utc;
use hmac::{Hmac, Mac};
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use opsdeck_wire::{ChannelConfig, Severity};
use serde_json::{json, Value};
use sha2::Sha256;

use super::guard;

/// How long one delivery may take (connect, TLS, request, answer).
pub const DEADLINE: Duration = Duration::from_secs(15);

/// A channel as stored (the secret included: server-side only).
#[derive(Clone)]
pub struct ChannelRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub config: ChannelConfig,
    pub secret: Option<String>,
    pub enabled: bool,
}

impl std::fmt::Debug for ChannelRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("has_secret", &self.secret.is_some())
            .field("enabled", &self.enabled)
            .finish()
    }
}

/// The incident a message is about, as it is when sent.
#[derive(Debug, Clone)]
pub struct IncidentInfo {
    pub id: i64,
    pub title: String,
    pub severity: Severity,
    pub status: String,
    pub summary: String,
    pub services: Vec<String>,
    pub url: String,
}

/// One message ready to go.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub notification_id: i64,
    /// escalation, update, runbook or test.
    pub kind: String,
    pub incident: Option<IncidentInfo>,
    pub run_id: Option<i64>,
    pub person_name: Option<String>,
    /// E-mail address or phone number for people; unused for chat kinds.
    pub address: String,
    pub severity: Severity,
    pub subject: String,
    pub body: String,
    pub ack_url: Option<String>,
    /// The panel's public base URL (no trailing slash).
    pub base: String,
}

/// Why a delivery did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The guard refused the target, or the channel's configuration cannot
    /// work: retrying will not help.
    Refused(String),
    /// The target failed (connection, status, timeout): retried.
    Failed(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Refused(m) | SendError::Failed(m) => f.write_str(m),
        }
    }
}

/// Human name of a channel kind for messages ("by e-mail").
pub fn kind_label(kind: &str) -> &'static str {
    match kind {
        "webhook" => "webhook",
        "slack" => "Slack",
        "teams" => "Teams",
        "email" => "e-mail",
        "sms" => "SMS",
        _ => "an unknown channel kind",
    }
}

/// The webhook `event` of a notification kind.
pub fn event_name(kind: &str) -> &'static str {
    match kind {
        "escalation" => "incident.escalation",
        "update" => "incident.update",
        "runbook" => "runbook",
        _ => "test",
    }
}

/// Colours of the panel's severity pills (static/app.css).
pub fn severity_colour(s: Severity) -> &'static str {
    match s {
        Severity::P1 => "991b1b",
        Severity::P2 => "9a3412",
        Severity::P3 => "854d0e",
        Severity::P4 => "374151",
    }
}

/// Sends `out` through `channel` within [`DEADLINE`]; `Ok` describes the
/// accepted delivery.
pub async fn deliver(
    channel: &ChannelRow,
    out: &Outgoing,
    allow_link_local: bool,
) -> Result<String, SendError> {
    let work = async {
        match channel.kind.as_str() {
            "webhook" => {
                let body = webhook_payload(out);
                post(channel, body, allow_link_local, Auth::Signature).await
            }
            "slack" => post(channel, slack_payload(out), allow_link_local, Auth::None).await,
            "teams" => post(channel, teams_payload(out), allow_link_local, Auth::None).await,
            "sms" => post(channel, sms_payload(out), allow_link_local, Auth::Bearer).await,
            "email" => send_email(channel, out, allow_link_local).await,
            other => Err(SendError::Refused(format!("unknown channel kind {other}"))),
        }
    };
    match tokio::time::timeout(DEADLINE, work).await {
        Ok(r) => r,
        Err(_) => Err(SendError::Failed(format!(
            "no answer within {} s",
            DEADLINE.as_secs()
        ))),
    }
}

// ------------------------------------------------------------------ payloads

fn incident_json(out: &Outgoing) -> Value {
    match &out.incident {
        Some(i) => json!({
            "id": i.id,
            "title": i.title,
            "severity": i.severity.as_str(),
            "status": i.status,
            "url": i.url,
        }),
        None => Value::Null,
    }
}

/// The generic webhook's JSON (see the module documentation).
pub fn webhook_payload(out: &Outgoing) -> Value {
    json!({
        "event": event_name(&out.kind),
        "notification_id": out.notification_id,
        "severity": out.severity.as_str(),
        "incident": incident_json(out),
        "run_id": out.run_id,
        "subject": out.subject,
        "text": out.body,
        "ack_url": out.ack_url,
        "sent_at": Utc::now(),
    })
}

/// Escapes text for Slack's mrkdwn (only these three are special).
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

fn link_target(out: &Outgoing) -> Option<String> {
    out.incident
        .as_ref()
        .map(|i| i.url.clone())
        .or_else(|| out.run_id.map(|r| format!("{}/runs/{r}", out.base)))
}

/// Slack-compatible incoming webhook message.
pub fn slack_payload(out: &Outgoing) -> Value {
    let subject = slack_escape(&out.subject);
    let body = slack_escape(&out.body);
    let mut text = format!("*{subject}*");
    if !body.is_empty() {
        text.push('\n');
        text.push_str(&body);
    }
    let mut fallback = format!("{}\n{}", out.subject, out.body);
    if let Some(ack) = &out.ack_url {
        fallback.push_str(&format!("\nAcknowledge: <{ack}|Acknowledge>"));
    }
    let mut blocks = vec![json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": truncate(&text, 2900)},
    })];
    let mut buttons = Vec::new();
    if let Some(ack) = &out.ack_url {
        buttons.push(json!({
            "type": "button",
            "text": {"type": "plain_text", "text": "Acknowledge"},
            "style": "primary",
            "url": ack,
            "action_id": "opsdeck_ack",
        }));
    }
    if let Some(url) = link_target(out) {
        buttons.push(json!({
            "type": "button",
            "text": {"type": "plain_text", "text": "Open in Opsdeck"},
            "url": url,
            "action_id": "opsdeck_open",
        }));
    }
    if !buttons.is_empty() {
        blocks.push(json!({"type": "actions", "elements": buttons}));
    }
    json!({"text": truncate(&fallback, 3000), "blocks": blocks})
}

/// Teams-compatible MessageCard.
pub fn teams_payload(out: &Outgoing) -> Value {
    let text = out
        .body
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    let mut actions = Vec::new();
    if let Some(ack) = &out.ack_url {
        actions.push(json!({
            "@type": "OpenUri",
            "name": "Acknowledge",
            "targets": [{"os": "default", "uri": ack}],
        }));
    }
    if let Some(url) = link_target(out) {
        actions.push(json!({
            "@type": "OpenUri",
            "name": "Open in Opsdeck",
            "targets": [{"os": "default", "uri": url}],
        }));
    }
    json!({
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": truncate(&out.subject, 150),
        "themeColor": severity_colour(out.severity),
        "title": out.subject,
        "text": truncate(&text, 20_000),
        "potentialAction": actions,
    })
}

/// SMS gateway request: a short text, the acknowledge URL kept whole.
pub fn sms_payload(out: &Outgoing) -> Value {
    let mut message = truncate(&out.subject, 160);
    if let Some(ack) = &out.ack_url {
        message.push_str(" Ack: ");
        message.push_str(ack);
    } else if out.kind == "test" {
        message = truncate(&format!("{} {}", out.subject, out.body), 300);
    }
    json!({"to": out.address, "message": message})
}

// ---------------------------------------------------------------- HTTP kinds

#[derive(Clone, Copy)]
enum Auth {
    None,
    /// `X-Opsdeck-Signature` with the secret as HMAC key.
    Signature,
    /// `Authorization: Bearer <secret>`.
    Bearer,
}

/// `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn post(
    channel: &ChannelRow,
    body: Value,
    allow_link_local: bool,
    auth: Auth,
) -> Result<String, SendError> {
    let Some(url) = channel.config.url.as_deref() else {
        return Err(SendError::Refused("the channel has no URL".into()));
    };
    let url = guard::check_url(url, allow_link_local)
        .map_err(|e| SendError::Refused(format!("refused: {e}")))?;
    let host = url.host_str().unwrap_or_default().to_owned();
    let bytes = serde_json::to_vec(&body).expect("JSON values serialise");
    let timestamp = Utc::now().timestamp();
    let mut req = guard::client(allow_link_local)
        .post(url)
        .timeout(DEADLINE)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Opsdeck-Timestamp", timestamp.to_string());
    let secret = channel.secret.as_deref().filter(|s| !s.is_empty());
    match (auth, secret) {
        (Auth::Signature, Some(s)) => {
            req = req.header("X-Opsdeck-Signature", signature(s, timestamp, &bytes));
        }
        (Auth::Bearer, Some(s)) => {
            req = req.bearer_auth(s);
        }
        _ => {}
    }
    let res = req
        .body(bytes)
        .send()
        .await
        .map_err(|e| describe_reqwest(e, &host))?;
    let status = res.status();
    if status.is_success() {
        Ok(format!("HTTP {} from {host}", status.as_u16()))
    } else if status.is_redirection() {
        Err(SendError::Failed(format!(
            "HTTP {} from {host} (redirects are not followed)",
            status.as_u16()
        )))
    } else {
        Err(SendError::Failed(format!(
            "HTTP {} from {host}",
            status.as_u16()
        )))
    }
}

/// A reqwest error without its URL: the guard's refusal, a timeout, or the
/// innermost cause.
fn describe_reqwest(e: reqwest::Error, host: &str) -> SendError {
    let e = e.without_url();
    if let Some(r) = guard::refusal_in(&e) {
        return SendError::Refused(format!("refused: {r}"));
    }
    if e.is_timeout() {
        return SendError::Failed(format!("{host} did not answer in time"));
    }
    let mut cause = e.to_string();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    while let Some(s) = cur {
        cause = s.to_string();
        cur = s.source();
    }
    if e.is_connect() {
        SendError::Failed(format!("cannot connect to {host}: {cause}"))
    } else {
        SendError::Failed(format!("request to {host} failed: {cause}"))
    }
}

// --------------------------------------------------------------------- e-mail

/// What the e-mail templates show.
pub struct EmailView {
    pub subject: String,
    pub severity: String,
    pub severity_meaning: String,
    pub colour: String,
    pub heading: String,
    pub status: Option<String>,
    pub services: Vec<String>,
    pub summary: String,
    pub lines: Vec<String>,
    pub ack_url: Option<String>,
    pub open_url: Option<String>,
    pub open_label: String,
    pub base: String,
}

#[derive(Template)]
#[template(path = "notify_email.html")]
struct EmailHtml<'a> {
    v: &'a EmailView,
}

#[derive(Template)]
#[template(path = "notify_email.txt")]
struct EmailText<'a> {
    v: &'a EmailView,
}

pub fn email_view(out: &Outgoing) -> EmailView {
    let (heading, status, services, summary) = match &out.incident {
        Some(i) => (
            format!("#{} {}", i.id, i.title),
            Some(i.status.replace('_', " ")),
            i.services.clone(),
            i.summary.clone(),
        ),
        None => (out.subject.clone(), None, Vec::new(), String::new()),
    };
    let (open_url, open_label) = match (&out.incident, out.run_id) {
        (Some(i), _) => (Some(i.url.clone()), "Open the incident in Opsdeck"),
        (None, Some(r)) => (
            Some(format!("{}/runs/{r}", out.base)),
            "Open the run in Opsdeck",
        ),
        _ => (None, ""),
    };
    EmailView {
        subject: out.subject.clone(),
        severity: out.severity.as_str().to_owned(),
        severity_meaning: out.severity.meaning().to_owned(),
        colour: severity_colour(out.severity).to_owned(),
        heading,
        status,
        services,
        summary,
        lines: out.body.lines().map(str::to_owned).collect(),
        ack_url: out.ack_url.clone(),
        open_url,
        open_label: open_label.to_owned(),
        base: out.base.clone(),
    }
}

/// The plain-text and HTML bodies.
pub fn render_email(v: &EmailView) -> Result<(String, String), askama::Error> {
    Ok((EmailText { v }.render()?, EmailHtml { v }.render()?))
}

/// The SMTP port when none is configured.
pub fn default_smtp_port(tls: &str) -> u16 {
    match tls {
        "none" => 25,
        "tls" => 465,
        _ => 587,
    }
}

async fn send_email(
    channel: &ChannelRow,
    out: &Outgoing,
    allow_link_local: bool,
) -> Result<String, SendError> {
    let c = &channel.config;
    let host = c
        .smtp_host
        .as_deref()
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| SendError::Refused("the channel has no SMTP host".into()))?;
    let tls = c.smtp_tls.as_deref().unwrap_or("starttls");
    let port = c.smtp_port.unwrap_or_else(|| default_smtp_port(tls));
    let from: Mailbox = c
        .from
        .as_deref()
        .unwrap_or_default()
        .parse()
        .map_err(|_| SendError::Refused("the channel's from address is not valid".into()))?;
    let to: Mailbox = out.address.parse().map_err(|_| {
        SendError::Refused(format!("{:?} is not a valid e-mail address", out.address))
    })?;
    let view = email_view(out);
    let (text, html) =
        render_email(&view).map_err(|e| SendError::Refused(format!("rendering failed: {e}")))?;
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(out.subject.clone())
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(text),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html),
                ),
        )
        .map_err(|e| SendError::Refused(format!("cannot build the message: {e}")))?;
    // Resolve once, check, and connect to the checked address: no second
    // lookup that a rebinding DNS answer could change.
    let addrs = guard::resolve_checked(host, port, allow_link_local)
        .await
        .map_err(|e| {
            if e.starts_with("refused") {
                SendError::Refused(e)
            } else {
                SendError::Failed(e)
            }
        })?;
    let addr = addrs[0];
    let tls_params = || {
        TlsParameters::new(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        )
        .map_err(|e| SendError::Refused(format!("TLS set-up for {host}: {e}")))
    };
    let tls = match tls {
        "none" => Tls::None,
        "tls" => Tls::Wrapper(tls_params()?),
        _ => Tls::Required(tls_params()?),
    };
    let mut builder =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
            .port(port)
            .tls(tls)
            .timeout(Some(DEADLINE));
    if let Some(user) = c.smtp_username.as_deref().filter(|u| !u.is_empty()) {
        builder = builder.credentials(Credentials::new(
            user.to_owned(),
            channel.secret.clone().unwrap_or_default(),
        ));
    }
    let transport = builder.build();
    match transport.send(message).await {
        Ok(res) => Ok(format!("accepted by {host} (SMTP {})", res.code())),
        Err(e) => {
            // lettre's messages name the server's reply, never the password.
            let mut cause = e.to_string();
            let mut cur = std::error::Error::source(&e);
            while let Some(s) = cur {
                cause = format!("{cause}: {s}");
                cur = s.source();
            }
            Err(SendError::Failed(format!(
                "SMTP {host}: {}",
                truncate(&cause, 300)
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(kind: &str) -> Outgoing {
        Outgoing {
            notification_id: 7,
            kind: kind.into(),
            incident: Some(IncidentInfo {
                id: 3,
                title: "db <down> & out".into(),
                severity: Severity::P1,
                status: "triggered".into(),
                summary: "primary gone".into(),
                services: vec!["db".into()],
                url: "https://ops.example.com/incidents/3".into(),
            }),
            run_id: None,
            person_name: Some("Jane".into()),
            address: "jane@example.com".into(),
            severity: Severity::P1,
            subject: "[P1] #3 db <down> & out".into(),
            body: "Status: triggered\n\nNotifying: Jane @jane".into(),
            ack_url: Some("https://ops.example.com/ack/1.2.3.4".into()),
            base: "https://ops.example.com".into(),
        }
    }

    #[test]
    fn signature_is_hmac_of_timestamp_dot_body() {
        // Independent computation of the documented scheme.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"k3y").unwrap();
        mac.update(b"1700000000.{\"a\":1}");
        let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(signature("k3y", 1_700_000_000, b"{\"a\":1}"), want);
    }

    #[test]
    fn slack_escapes_and_links() {
        let v = slack_payload(&out("escalation"));
        let text = v["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(text.contains("db &lt;down&gt; &amp; out"), "{text}");
        assert!(text.contains("@jane"));
        assert_eq!(
            v["blocks"][1]["elements"][0]["url"],
            "https://ops.example.com/ack/1.2.3.4"
        );
    }

    #[test]
    fn teams_card_has_colour_and_actions() {
        let v = teams_payload(&out("escalation"));
        assert_eq!(v["@type"], "MessageCard");
        assert_eq!(v["themeColor"], "991b1b");
        assert_eq!(v["potentialAction"][0]["name"], "Acknowledge");
    }

    #[test]
    fn emails_render_escaped_html_and_plain_text() {
        let (text, html) = render_email(&email_view(&out("escalation"))).unwrap();
        assert!(
            html.contains("db &#60;down&#62; &#38; out")
                || html.contains("db &lt;down&gt; &amp; out"),
            "{html}"
        );
        assert!(html.contains("https://ops.example.com/ack/1.2.3.4"));
        assert!(text.contains("db <down> & out"));
        assert!(text.contains("Acknowledge: https://ops.example.com/ack/1.2.3.4"));
    }
}
