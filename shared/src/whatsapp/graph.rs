//! The WhatsApp Cloud API sender: turns an [`Outbound`] into a Graph API request, paces
//! requests to Meta's per-number throughput, retries in process what Meta says is
//! transient, and sorts every other failure into give-up or alarm so the SQS worker knows
//! whether to fail the record (SQS redelivers it), record it, or wake a person.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use reqwest::header::RETRY_AFTER;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{MAX_MEDIA_BYTES, Media, SendError, Sender, Sent};
use crate::support::retry::RetryPolicy;
use crate::support::text::truncate_chars;
use crate::whatsapp::outbound::{Choice, LimitError, Outbound, Section, TemplateComponent};

pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com";
/// Per call, connecting included: a stuck call fails, and is retried, well inside the
/// worker's own timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Meta's default throughput per business phone number.
pub const MESSAGES_PER_SECOND: u32 = 80;
/// Longest wait between attempts in process. When Meta's `Retry-After` asks for longer,
/// the call stops and SQS redelivery does the waiting instead of a billed Lambda.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);
/// Calls per message, the first included, and the first backoff (doubled, with jitter).
pub const DEFAULT_RETRY: RetryPolicy = RetryPolicy {
    attempts: 4,
    base_delay: Duration::from_millis(200),
};
/// Longest Graph error text kept in a [`SendError`].
const MAX_ERROR_MESSAGE: usize = 500;

/// The Graph API adapter, built once per container: one connection pool, one pacer.
#[derive(Debug)]
pub struct GraphClient {
    http: reqwest::Client,
    base_url: String,
    version: String,
    retry: RetryPolicy,
    pacer: Pacer,
}

impl GraphClient {
    /// `base_url` is usually [`DEFAULT_BASE_URL`]; `version` a Graph version like `v23.0`.
    pub fn new(base_url: impl Into<String>, version: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("the HTTP client (TLS backend) initialises");
        Self {
            http,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            version: version.into().trim_matches('/').to_owned(),
            retry: DEFAULT_RETRY,
            pacer: Pacer::new(MESSAGES_PER_SECOND),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// POSTs `body` to the number's `/messages` edge, retrying transient failures, and
    /// returns the status and body of the accepted response. Strings in `hide` (the token,
    /// the recipient) are removed from any error text.
    async fn post(
        &self,
        phone_number_id: &str,
        body: &Value,
        token: &str,
        hide: &[&str],
    ) -> Result<(u16, Vec<u8>), SendError> {
        check_id(phone_number_id)?;
        let url = format!(
            "{}/{}/{phone_number_id}/messages",
            self.base_url, self.version
        );
        let attempts = self.retry.attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.pacer.wait(phone_number_id).await;
            let Failure { error, retry_after } = match self.call(&url, token, body, hide).await {
                Ok(accepted) => return Ok(accepted),
                Err(failure) => failure,
            };
            let delay = if error.is_retryable() && attempt < attempts {
                retry_delay(&self.retry, attempt, retry_after)
            } else {
                None
            };
            let Some(delay) = delay else {
                if matches!(error, SendError::Alarm { .. }) {
                    tracing::error!(phone_number_id, code = ?error.code(), %error, "Graph API call failed and needs attention");
                } else {
                    tracing::warn!(phone_number_id, code = ?error.code(), attempts = attempt, %error, "Graph API call failed");
                }
                return Err(error);
            };
            tracing::warn!(
                phone_number_id,
                code = ?error.code(),
                attempt,
                delay_ms = delay.as_millis() as u64,
                "Graph API call failed transiently, retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One HTTP call.
    async fn call(
        &self,
        url: &str,
        token: &str,
        body: &Value,
        hide: &[&str],
    ) -> Result<(u16, Vec<u8>), Failure> {
        let response = self
            .http
            .post(url)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(|error| Failure {
                error: SendError::RetryLater {
                    code: None,
                    message: redact(crate::support::http::describe(&error), token, hide),
                },
                retry_after: None,
            })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok()?.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // An unreadable body leaves only the status to go on.
        let bytes = response
            .bytes()
            .await
            .map(|bytes| bytes.to_vec())
            .unwrap_or_default();
        if (200..300).contains(&status) {
            Ok((status, bytes))
        } else {
            Err(Failure {
                error: classify(status, &bytes, token, hide),
                retry_after,
            })
        }
    }
}

impl Sender for GraphClient {
    async fn send(
        &self,
        phone_number_id: &str,
        token: &str,
        to: &str,
        message: &Outbound,
    ) -> Result<Sent, SendError> {
        message.validate()?;
        let kind = message.kind();
        let (status, body) = self
            .post(phone_number_id, &message_body(to, message), token, &[to])
            .await?;
        let wamid = serde_json::from_slice::<SendResponse>(&body)
            .ok()
            .and_then(|response| response.messages.into_iter().next())
            .map(|message| message.id);
        match wamid {
            Some(wamid) => {
                tracing::info!(phone_number_id, kind, %wamid, "message sent");
                Ok(Sent { wamid })
            }
            // Meta took the request; sending it again could deliver it twice.
            None => Err(SendError::GiveUp {
                code: i64::from(status),
                message: format!(
                    "HTTP {status} without a message id; not retried as it may have been delivered"
                ),
            }),
        }
    }

    async fn mark_read(
        &self,
        phone_number_id: &str,
        token: &str,
        wamid: &str,
        typing: bool,
    ) -> Result<(), SendError> {
        let mut body = json!({
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": wamid,
        });
        if typing {
            body["typing_indicator"] = json!({ "type": "text" });
        }
        self.post(phone_number_id, &body, token, &[]).await?;
        tracing::debug!(phone_number_id, typing, "message marked read");
        Ok(())
    }

    /// `GET /{version}/{media_id}` gives a short-lived URL; the file is fetched from it with
    /// the same token. Each step is one call: SQS redelivery retries a failure.
    async fn download_media(&self, token: &str, media_id: &str) -> Result<Media, SendError> {
        #[derive(Deserialize)]
        struct Location {
            url: String,
            mime_type: Option<String>,
        }
        check_id(media_id).map_err(|mut e| {
            e.field = "media_id".into();
            SendError::Invalid(e)
        })?;
        let url = format!("{}/{}/{media_id}", self.base_url, self.version);
        let location = self.get(&url, token).await?;
        let location: Location =
            serde_json::from_slice(&location.1).map_err(|e| SendError::GiveUp {
                code: 0,
                message: format!("media location unreadable: {e}"),
            })?;
        let (content_type, bytes) = self.get(&location.url, token).await?;
        let mime_type = location
            .mime_type
            .or(content_type)
            .unwrap_or_else(|| "application/octet-stream".into());
        Ok(Media { mime_type, bytes })
    }
}

impl GraphClient {
    /// One GET with the token; returns the content type and the body (at most
    /// [`MAX_MEDIA_BYTES`]).
    async fn get(&self, url: &str, token: &str) -> Result<(Option<String>, Vec<u8>), SendError> {
        let failed = |error: &reqwest::Error| SendError::RetryLater {
            code: None,
            message: redact(crate::support::http::describe(error), token, &[]),
        };
        let response = self
            .http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| failed(&e))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if response
            .content_length()
            .is_some_and(|length| length as usize > MAX_MEDIA_BYTES)
        {
            return Err(SendError::GiveUp {
                code: i64::from(status),
                message: format!("media larger than {MAX_MEDIA_BYTES} bytes"),
            });
        }
        let bytes = response.bytes().await.map_err(|e| failed(&e))?.to_vec();
        if !(200..300).contains(&status) {
            return Err(classify(status, &bytes, token, &[]));
        }
        if bytes.len() > MAX_MEDIA_BYTES {
            return Err(SendError::GiveUp {
                code: i64::from(status),
                message: format!("media larger than {MAX_MEDIA_BYTES} bytes"),
            });
        }
        Ok((content_type, bytes))
    }
}

/// The id goes into the URL path: anything but letters and digits could change the route.
fn check_id(phone_number_id: &str) -> Result<(), LimitError> {
    if !phone_number_id.is_empty() && phone_number_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(LimitError {
            field: "phone_number_id".into(),
            rule: "must be ASCII letters and digits".into(),
        })
    }
}

// ---- Request bodies ------------------------------------------------------------------

/// The `/messages` request body for `message` to `to`.
fn message_body(to: &str, message: &Outbound) -> Value {
    let (kind, content) = match message {
        Outbound::Text { body, preview_url } => {
            ("text", json!({ "body": body, "preview_url": preview_url }))
        }
        Outbound::Buttons {
            body,
            header,
            footer,
            buttons,
        } => (
            "interactive",
            interactive(
                "button",
                body,
                header,
                footer,
                json!({ "buttons": buttons.iter().map(reply_button).collect::<Vec<_>>() }),
            ),
        ),
        Outbound::List {
            body,
            header,
            footer,
            button,
            sections,
        } => (
            "interactive",
            interactive(
                "list",
                body,
                header,
                footer,
                json!({
                    "button": button,
                    "sections": sections.iter().map(list_section).collect::<Vec<_>>(),
                }),
            ),
        ),
        Outbound::Template {
            name,
            language,
            components,
        } => ("template", template(name, language, components)),
        Outbound::Flow {
            body,
            header,
            footer,
            flow_id,
            cta,
            flow_token,
            screen,
        } => {
            let mut parameters = json!({
                "flow_message_version": "3",
                "flow_id": flow_id,
                "flow_cta": cta,
                "flow_token": flow_token,
            });
            // A first screen opens the flow directly; without one, the flow's endpoint
            // is asked for it.
            match screen {
                Some(screen) => {
                    parameters["flow_action"] = json!("navigate");
                    parameters["flow_action_payload"] = json!({ "screen": screen });
                }
                None => parameters["flow_action"] = json!("data_exchange"),
            }
            (
                "interactive",
                interactive(
                    "flow",
                    body,
                    header,
                    footer,
                    json!({ "name": "flow", "parameters": parameters }),
                ),
            )
        }
        Outbound::Media {
            kind,
            link,
            filename,
        } => {
            let mut media = json!({ "link": link });
            if let (Some(filename), "document") = (filename, kind.as_str()) {
                media["filename"] = json!(filename);
            }
            // `kind` is one of four fixed words (checked by `validate`).
            let kind: &'static str = match kind.as_str() {
                "image" => "image",
                "audio" => "audio",
                "video" => "video",
                _ => "document",
            };
            (kind, media)
        }
    };
    let mut request = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": kind,
    });
    request[kind] = content;
    request
}

fn interactive(
    kind: &str,
    body: &str,
    header: &Option<String>,
    footer: &Option<String>,
    action: Value,
) -> Value {
    let mut interactive = json!({ "type": kind, "body": { "text": body }, "action": action });
    if let Some(header) = header {
        interactive["header"] = json!({ "type": "text", "text": header });
    }
    if let Some(footer) = footer {
        interactive["footer"] = json!({ "text": footer });
    }
    interactive
}

fn reply_button(choice: &Choice) -> Value {
    json!({ "type": "reply", "reply": { "id": choice.id, "title": choice.title } })
}

fn list_section(section: &Section) -> Value {
    let rows: Vec<Value> = section
        .rows
        .iter()
        .map(|row| {
            let mut value = json!({ "id": row.id, "title": row.title });
            if let Some(description) = &row.description {
                value["description"] = json!(description);
            }
            value
        })
        .collect();
    let mut value = json!({ "rows": rows });
    if let Some(title) = &section.title {
        value["title"] = json!(title);
    }
    value
}

fn template(name: &str, language: &str, components: &[TemplateComponent]) -> Value {
    let mut template = json!({ "name": name, "language": { "code": language } });
    // Components only carry parameters: one without any adds nothing.
    let components: Vec<Value> = components
        .iter()
        .filter(|component| !component.parameters.is_empty())
        .map(template_component)
        .collect();
    if !components.is_empty() {
        template["components"] = json!(components);
    }
    template
}

/// Text parameters for header and body; for buttons, a payload for quick replies, a
/// coupon code for copy-code buttons and the URL suffix (text) for URL buttons.
fn template_component(component: &TemplateComponent) -> Value {
    if component.kind != "button" {
        let parameters: Vec<Value> = component
            .parameters
            .iter()
            .map(|text| json!({ "type": "text", "text": text }))
            .collect();
        return json!({ "type": component.kind, "parameters": parameters });
    }
    let sub_type = component.sub_type.as_deref().unwrap_or("quick_reply");
    let parameters: Vec<Value> = component
        .parameters
        .iter()
        .map(|value| match sub_type {
            "quick_reply" => json!({ "type": "payload", "payload": value }),
            "copy_code" => json!({ "type": "coupon_code", "coupon_code": value }),
            _ => json!({ "type": "text", "text": value }),
        })
        .collect();
    json!({
        "type": "button",
        "sub_type": sub_type,
        "index": component.index.unwrap_or(0).to_string(),
        "parameters": parameters,
    })
}

// ---- Responses and errors ------------------------------------------------------------

#[derive(Deserialize)]
struct SendResponse {
    #[serde(default)]
    messages: Vec<MessageId>,
}

#[derive(Deserialize)]
struct MessageId {
    id: String,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    #[serde(default)]
    message: String,
    #[serde(rename = "type", default)]
    kind: String,
    code: Option<i64>,
    error_subcode: Option<i64>,
    error_data: Option<ErrorData>,
    fbtrace_id: Option<String>,
}

#[derive(Deserialize)]
struct ErrorData {
    details: Option<String>,
}

impl GraphError {
    fn describe(&self) -> String {
        let mut text = format!("{}: {}", self.kind, self.message);
        if let Some(details) = self.error_data.as_ref().and_then(|d| d.details.as_ref()) {
            let _ = write!(text, " ({details})");
        }
        if let Some(subcode) = self.error_subcode {
            let _ = write!(text, " [subcode {subcode}]");
        }
        if let Some(trace) = &self.fbtrace_id {
            let _ = write!(text, " [fbtrace_id {trace}]");
        }
        text
    }
}

/// A failed call and how long Meta asked us to wait before the next.
struct Failure {
    error: SendError,
    retry_after: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    RetryLater,
    GiveUp,
    Alarm,
}

/// What to do about a Graph error: by its code when Meta documents it, by HTTP status
/// otherwise.
fn class_of(status: u16, code: Option<i64>) -> Class {
    match code {
        // Throttled (throughput, pair rate, app and account rate limits), Meta
        // unavailable or in maintenance, unknown transient errors.
        Some(1 | 2 | 4 | 80007 | 130429 | 131000 | 131016 | 131056 | 131057) => Class::RetryLater,
        // Token expired or invalid, permission missing or removed, account blocked or
        // locked: no message goes out until someone fixes it.
        Some(0 | 3 | 10 | 190 | 200..=299 | 368 | 131005 | 131031) => Class::Alarm,
        // Undeliverable, outside the 24 h window, invalid parameters, template problems.
        Some(
            100 | 131008 | 131009 | 131026 | 131047 | 131051 | 131052 | 131053 | 132000..=132069,
        ) => Class::GiveUp,
        _ => match status {
            429 | 500..=599 => Class::RetryLater,
            401 | 403 => Class::Alarm,
            _ => Class::GiveUp,
        },
    }
}

fn classify(status: u16, body: &[u8], token: &str, hide: &[&str]) -> SendError {
    let graph = serde_json::from_slice::<ErrorResponse>(body)
        .ok()
        .map(|response| response.error);
    let code = graph.as_ref().and_then(|error| error.code);
    let message = match &graph {
        Some(error) => format!("HTTP {status}, {}", error.describe()),
        None => format!("HTTP {status}"),
    };
    let message = redact(message, token, hide);
    let code_or_status = code.unwrap_or(i64::from(status));
    match class_of(status, code) {
        Class::RetryLater => SendError::RetryLater { code, message },
        Class::GiveUp => SendError::GiveUp {
            code: code_or_status,
            message,
        },
        Class::Alarm => SendError::Alarm {
            code: code_or_status,
            message,
        },
    }
}

/// Removes the token and the given strings from Graph's error text, and bounds its length.
fn redact(mut text: String, token: &str, hide: &[&str]) -> String {
    for secret in std::iter::once(&token).chain(hide) {
        if !secret.is_empty() {
            text = text.replace(secret, "<redacted>");
        }
    }
    match truncate_chars(&text, MAX_ERROR_MESSAGE) {
        kept if kept.len() < text.len() => format!("{kept}…"),
        _ => text,
    }
}

/// The wait before the attempt after `attempt`: exponential backoff with jitter, or Meta's
/// `Retry-After` when longer. `None` when Meta asks for more than [`MAX_RETRY_DELAY`].
fn retry_delay(
    policy: &RetryPolicy,
    attempt: u32,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let backoff = policy.backoff(attempt, MAX_RETRY_DELAY);
    match retry_after {
        Some(wait) if wait > MAX_RETRY_DELAY => None,
        Some(wait) => Some(wait.max(backoff)),
        None => Some(backoff),
    }
}

// ---- Pacing --------------------------------------------------------------------------

/// Spaces calls for each phone number id at least `1 / rate` seconds apart, so one
/// container never exceeds Meta's throughput for a number. Each call reserves the next free
/// slot under the lock and then sleeps, unlocked, until it.
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    next_slot: Mutex<HashMap<String, Instant>>,
}

/// Past this many numbers, numbers idle since their last slot are forgotten.
const PACER_PRUNE_AT: usize = 1024;

impl Pacer {
    fn new(per_second: u32) -> Self {
        Self {
            interval: Duration::from_secs(1) / per_second.max(1),
            next_slot: Mutex::new(HashMap::new()),
        }
    }

    async fn wait(&self, phone_number_id: &str) {
        let now = Instant::now();
        let slot = self.reserve(phone_number_id, now);
        if slot > now {
            tokio::time::sleep_until(slot).await;
        }
    }

    fn reserve(&self, phone_number_id: &str, now: Instant) -> Instant {
        let mut next_slot = self
            .next_slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if next_slot.len() >= PACER_PRUNE_AT {
            next_slot.retain(|_, slot| *slot > now);
        }
        let slot = next_slot
            .get(phone_number_id)
            .map_or(now, |&slot| slot.max(now));
        next_slot.insert(phone_number_id.to_owned(), slot + self.interval);
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Arc;

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::header::AUTHORIZATION;
    use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
    use axum::response::{IntoResponse, Response};

    const PHONE_NUMBER_ID: &str = "106540352242922";
    const TOKEN: &str = "EAAG-test-token";
    const TO: &str = "5511987654321";

    #[derive(Debug, Clone, PartialEq)]
    struct Recorded {
        method: Method,
        path: String,
        authorization: String,
        body: Value,
    }

    #[derive(Clone)]
    struct Reply {
        status: u16,
        retry_after: Option<&'static str>,
        body: Value,
    }

    fn accepted(wamid: &str) -> Reply {
        Reply {
            status: 200,
            retry_after: None,
            body: json!({
                "messaging_product": "whatsapp",
                "contacts": [{ "input": TO, "wa_id": TO }],
                "messages": [{ "id": wamid }],
            }),
        }
    }

    fn graph_error(status: u16, code: i64, message: &str) -> Reply {
        Reply {
            status,
            retry_after: None,
            body: json!({
                "error": {
                    "message": message,
                    "type": "OAuthException",
                    "code": code,
                    "error_data": { "messaging_product": "whatsapp", "details": "details" },
                    "fbtrace_id": "AbCdEf",
                }
            }),
        }
    }

    struct FakeState {
        requests: Mutex<Vec<Recorded>>,
        script: Mutex<VecDeque<Reply>>,
        otherwise: Reply,
    }

    /// A Graph API on 127.0.0.1 that records each request and answers from a script, then
    /// with `otherwise`.
    struct FakeGraph {
        url: String,
        state: Arc<FakeState>,
    }

    impl FakeGraph {
        async fn start(script: Vec<Reply>, otherwise: Reply) -> Self {
            let state = Arc::new(FakeState {
                requests: Mutex::new(Vec::new()),
                script: Mutex::new(script.into()),
                otherwise,
            });
            let router = Router::new().fallback(answer).with_state(state.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
            Self { url, state }
        }

        async fn accepting() -> Self {
            Self::start(Vec::new(), accepted("wamid.default")).await
        }

        fn client(&self) -> GraphClient {
            GraphClient::new(&self.url, "v23.0").with_retry(RetryPolicy {
                attempts: 4,
                base_delay: Duration::from_millis(1),
            })
        }

        fn requests(&self) -> Vec<Recorded> {
            self.state.requests.lock().unwrap().clone()
        }

        /// The one request the fake received, checked for path and token.
        fn only_body(&self) -> Value {
            let requests = self.requests();
            assert_eq!(requests.len(), 1, "{requests:?}");
            let request = &requests[0];
            assert_eq!(request.method, Method::POST);
            assert_eq!(request.path, format!("/v23.0/{PHONE_NUMBER_ID}/messages"));
            assert_eq!(request.authorization, format!("Bearer {TOKEN}"));
            request.body.clone()
        }
    }

    async fn answer(
        State(state): State<Arc<FakeState>>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        state.requests.lock().unwrap().push(Recorded {
            method,
            path: uri.path().into(),
            authorization: headers
                .get(AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .into(),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        let reply = state
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| state.otherwise.clone());
        let mut response = (
            StatusCode::from_u16(reply.status).unwrap(),
            axum::Json(reply.body),
        )
            .into_response();
        if let Some(seconds) = reply.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static(seconds));
        }
        response
    }

    async fn send(fake: &FakeGraph, message: &Outbound) -> Result<Sent, SendError> {
        fake.client()
            .send(PHONE_NUMBER_ID, TOKEN, TO, message)
            .await
    }

    fn choice(id: &str, title: &str, description: Option<&str>) -> Choice {
        Choice {
            id: id.into(),
            title: title.into(),
            description: description.map(Into::into),
        }
    }

    fn envelope(kind: &str, content: Value) -> Value {
        let mut request = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": TO,
            "type": kind,
        });
        request[kind] = content;
        request
    }

    #[tokio::test]
    async fn sends_text_and_returns_the_wamid() {
        let fake = FakeGraph::start(Vec::new(), accepted("wamid.HBgN")).await;
        let message = Outbound::Text {
            body: "Olá! Em que posso ajudar?".into(),
            preview_url: true,
        };
        let sent = send(&fake, &message).await.unwrap();
        assert_eq!(sent.wamid, "wamid.HBgN");
        assert_eq!(
            fake.only_body(),
            envelope(
                "text",
                json!({ "body": "Olá! Em que posso ajudar?", "preview_url": true })
            )
        );
    }

    #[tokio::test]
    async fn sends_reply_buttons_with_header_and_footer() {
        let fake = FakeGraph::accepting().await;
        let message = Outbound::Buttons {
            body: "Como podemos ajudar?".into(),
            header: Some("Atendimento".into()),
            footer: Some("Responda com um toque".into()),
            buttons: vec![
                choice("suporte", "Suporte", None),
                choice("vendas", "Vendas", Some("ignored by buttons")),
            ],
        };
        send(&fake, &message).await.unwrap();
        assert_eq!(
            fake.only_body(),
            envelope(
                "interactive",
                json!({
                    "type": "button",
                    "header": { "type": "text", "text": "Atendimento" },
                    "body": { "text": "Como podemos ajudar?" },
                    "footer": { "text": "Responda com um toque" },
                    "action": { "buttons": [
                        { "type": "reply", "reply": { "id": "suporte", "title": "Suporte" } },
                        { "type": "reply", "reply": { "id": "vendas", "title": "Vendas" } },
                    ] },
                })
            )
        );
    }

    #[tokio::test]
    async fn sends_a_list_with_two_sections() {
        let fake = FakeGraph::accepting().await;
        let message = Outbound::List {
            body: "Escolha um assunto".into(),
            header: None,
            footer: None,
            button: "Ver opções".into(),
            sections: vec![
                Section {
                    title: Some("Pedidos".into()),
                    rows: vec![
                        choice("status", "Status do pedido", Some("Onde está meu pedido")),
                        choice("troca", "Troca", None),
                    ],
                },
                Section {
                    title: Some("Conta".into()),
                    rows: vec![choice("senha", "Senha", None)],
                },
            ],
        };
        send(&fake, &message).await.unwrap();
        assert_eq!(
            fake.only_body(),
            envelope(
                "interactive",
                json!({
                    "type": "list",
                    "body": { "text": "Escolha um assunto" },
                    "action": {
                        "button": "Ver opções",
                        "sections": [
                            { "title": "Pedidos", "rows": [
                                { "id": "status", "title": "Status do pedido",
                                  "description": "Onde está meu pedido" },
                                { "id": "troca", "title": "Troca" },
                            ] },
                            { "title": "Conta", "rows": [{ "id": "senha", "title": "Senha" }] },
                        ],
                    },
                })
            )
        );
    }

    #[tokio::test]
    async fn sends_a_template_with_body_and_button_parameters() {
        let fake = FakeGraph::accepting().await;
        let component =
            |kind: &str, sub_type: Option<&str>, index, parameters: &[&str]| TemplateComponent {
                kind: kind.into(),
                sub_type: sub_type.map(Into::into),
                index,
                parameters: parameters.iter().map(|p| p.to_string()).collect(),
            };
        let message = Outbound::Template {
            name: "lembrete_pedido".into(),
            language: "pt_BR".into(),
            components: vec![
                component("body", None, None, &["Ana", "#1234"]),
                component("button", Some("quick_reply"), Some(0), &["confirmar"]),
                component("button", Some("url"), Some(1), &["pedidos/1234"]),
                component("header", None, None, &[]),
            ],
        };
        send(&fake, &message).await.unwrap();
        assert_eq!(
            fake.only_body(),
            envelope(
                "template",
                json!({
                    "name": "lembrete_pedido",
                    "language": { "code": "pt_BR" },
                    "components": [
                        { "type": "body", "parameters": [
                            { "type": "text", "text": "Ana" },
                            { "type": "text", "text": "#1234" },
                        ] },
                        { "type": "button", "sub_type": "quick_reply", "index": "0",
                          "parameters": [{ "type": "payload", "payload": "confirmar" }] },
                        { "type": "button", "sub_type": "url", "index": "1",
                          "parameters": [{ "type": "text", "text": "pedidos/1234" }] },
                    ],
                })
            )
        );
    }

    #[tokio::test]
    async fn sends_a_flow_opening_its_first_screen() {
        let fake = FakeGraph::accepting().await;
        let message = Outbound::Flow {
            body: "Agende sua visita".into(),
            header: None,
            footer: Some("Leva 1 minuto".into()),
            flow_id: "1234567890".into(),
            cta: "Agendar".into(),
            flow_token: "conv-42".into(),
            screen: Some("AGENDA".into()),
        };
        send(&fake, &message).await.unwrap();
        assert_eq!(
            fake.only_body(),
            envelope(
                "interactive",
                json!({
                    "type": "flow",
                    "body": { "text": "Agende sua visita" },
                    "footer": { "text": "Leva 1 minuto" },
                    "action": {
                        "name": "flow",
                        "parameters": {
                            "flow_message_version": "3",
                            "flow_id": "1234567890",
                            "flow_cta": "Agendar",
                            "flow_token": "conv-42",
                            "flow_action": "navigate",
                            "flow_action_payload": { "screen": "AGENDA" },
                        },
                    },
                })
            )
        );
    }

    #[test]
    fn a_flow_without_a_screen_asks_its_endpoint() {
        let message = Outbound::Flow {
            body: "b".into(),
            header: Some("h".into()),
            footer: None,
            flow_id: "1".into(),
            cta: "Abrir".into(),
            flow_token: "t".into(),
            screen: None,
        };
        let body = message_body(TO, &message);
        let interactive = &body["interactive"];
        assert_eq!(
            interactive["header"],
            json!({ "type": "text", "text": "h" })
        );
        let parameters = &interactive["action"]["parameters"];
        assert_eq!(parameters["flow_action"], "data_exchange");
        assert!(parameters.get("flow_action_payload").is_none());
    }

    #[tokio::test]
    async fn marks_read_with_and_without_the_typing_indicator() {
        let fake = FakeGraph::start(Vec::new(), accepted_read()).await;
        let client = fake.client();
        client
            .mark_read(PHONE_NUMBER_ID, TOKEN, "wamid.IN", true)
            .await
            .unwrap();
        client
            .mark_read(PHONE_NUMBER_ID, TOKEN, "wamid.IN2", false)
            .await
            .unwrap();
        let requests = fake.requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(
            requests[0].path,
            format!("/v23.0/{PHONE_NUMBER_ID}/messages")
        );
        assert_eq!(requests[0].authorization, format!("Bearer {TOKEN}"));
        assert_eq!(
            requests[0].body,
            json!({
                "messaging_product": "whatsapp",
                "status": "read",
                "message_id": "wamid.IN",
                "typing_indicator": { "type": "text" },
            })
        );
        assert_eq!(
            requests[1].body,
            json!({ "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN2" })
        );
    }

    fn accepted_read() -> Reply {
        Reply {
            status: 200,
            retry_after: None,
            body: json!({ "success": true }),
        }
    }

    #[tokio::test]
    async fn throttling_is_retried_after_retry_after() {
        let throttled = Reply {
            retry_after: Some("1"),
            ..graph_error(429, 130429, "(#130429) Rate limit hit")
        };
        let fake = FakeGraph::start(vec![throttled], accepted("wamid.LATER")).await;
        let started = std::time::Instant::now();
        let sent = send(&fake, &Outbound::text("oi")).await.unwrap();
        assert_eq!(sent.wamid, "wamid.LATER");
        assert_eq!(fake.requests().len(), 2);
        // The base delay is 1 ms: only the header can account for a whole second.
        assert!(started.elapsed() >= Duration::from_secs(1));
    }

    #[tokio::test]
    async fn server_errors_are_retried_until_accepted() {
        let failed = Reply {
            status: 500,
            retry_after: None,
            body: json!("Internal Server Error"),
        };
        let fake = FakeGraph::start(vec![failed.clone(), failed], accepted("wamid.THIRD")).await;
        let sent = send(&fake, &Outbound::text("oi")).await.unwrap();
        assert_eq!(sent.wamid, "wamid.THIRD");
        let requests = fake.requests();
        assert_eq!(requests.len(), 3);
        assert!(requests.iter().all(|r| r.body == requests[0].body));
    }

    #[tokio::test]
    async fn persistent_unavailability_is_retry_later_after_every_attempt() {
        let fake = FakeGraph::start(
            Vec::new(),
            graph_error(503, 131016, "(#131016) Service unavailable"),
        )
        .await;
        let error = send(&fake, &Outbound::text("oi")).await.unwrap_err();
        assert!(error.is_retryable());
        assert_eq!(error.code(), Some(131016));
        assert_eq!(fake.requests().len(), 4);
    }

    #[tokio::test]
    async fn undeliverable_messages_give_up_after_one_request() {
        let fake = FakeGraph::start(
            Vec::new(),
            graph_error(400, 131026, "(#131026) Message Undeliverable"),
        )
        .await;
        let error = send(&fake, &Outbound::text("oi")).await.unwrap_err();
        assert!(
            matches!(error, SendError::GiveUp { code: 131026, .. }),
            "{error:?}"
        );
        assert!(!error.is_retryable());
        assert_eq!(fake.requests().len(), 1);
    }

    #[tokio::test]
    async fn an_expired_token_raises_an_alarm_without_printing_it() {
        let message = format!("Error validating access token: {TOKEN} has expired");
        let fake = FakeGraph::start(Vec::new(), graph_error(401, 190, &message)).await;
        let error = send(&fake, &Outbound::text("segredo do cliente"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, SendError::Alarm { code: 190, .. }),
            "{error:?}"
        );
        assert_eq!(fake.requests().len(), 1);
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(!shown.contains("segredo"), "{shown}");
        assert!(shown.contains("fbtrace_id AbCdEf"), "{shown}");
    }

    #[tokio::test]
    async fn a_message_over_a_limit_is_refused_before_any_request() {
        let fake = FakeGraph::accepting().await;
        let four = Outbound::Buttons {
            body: "Escolha".into(),
            header: None,
            footer: None,
            buttons: (0..4)
                .map(|i| choice(&i.to_string(), "Opção", None))
                .collect(),
        };
        let error = send(&fake, &four).await.unwrap_err();
        match &error {
            SendError::Invalid(limit) => assert_eq!(limit.field, "buttons"),
            other => panic!("expected Invalid, got {other:?}"),
        }
        assert_eq!(error.code(), None);
        assert!(fake.requests().is_empty());
    }

    #[tokio::test]
    async fn an_unsafe_phone_number_id_is_refused_before_any_request() {
        let fake = FakeGraph::accepting().await;
        let error = fake
            .client()
            .send("123/../me", TOKEN, TO, &Outbound::text("oi"))
            .await
            .unwrap_err();
        assert!(matches!(error, SendError::Invalid(_)), "{error:?}");
        assert!(fake.requests().is_empty());
    }

    #[tokio::test]
    async fn an_accepted_send_without_a_wamid_is_not_retried() {
        let fake = FakeGraph::start(Vec::new(), accepted_read()).await;
        let error = send(&fake, &Outbound::text("oi")).await.unwrap_err();
        assert!(
            matches!(error, SendError::GiveUp { code: 200, .. }),
            "{error:?}"
        );
        assert_eq!(fake.requests().len(), 1);
    }

    #[tokio::test]
    async fn network_failures_are_retry_later() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let client = GraphClient::new(url, "v23.0").with_retry(RetryPolicy {
            attempts: 2,
            base_delay: Duration::from_millis(1),
        });
        let error = client
            .send(PHONE_NUMBER_ID, TOKEN, TO, &Outbound::text("oi"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, SendError::RetryLater { code: None, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn errors_are_sorted_by_code_then_by_status() {
        use Class::*;
        let cases = [
            (429, Some(130429), RetryLater),
            (400, Some(131057), RetryLater),
            (500, Some(131000), RetryLater),
            (503, Some(131016), RetryLater),
            (400, Some(131056), RetryLater),
            (502, None, RetryLater),
            (429, None, RetryLater),
            (500, Some(999_999), RetryLater),
            (400, Some(131026), GiveUp),
            (400, Some(131047), GiveUp),
            (400, Some(131051), GiveUp),
            (400, Some(131052), GiveUp),
            (400, Some(131053), GiveUp),
            (400, Some(100), GiveUp),
            (400, Some(131008), GiveUp),
            (400, Some(131009), GiveUp),
            (404, Some(132001), GiveUp),
            (400, Some(132069), GiveUp),
            (400, Some(999_999), GiveUp),
            (404, None, GiveUp),
            (401, Some(190), Alarm),
            (400, Some(368), Alarm),
            (400, Some(131031), Alarm),
            (403, Some(10), Alarm),
            (403, Some(200), Alarm),
            (401, None, Alarm),
        ];
        for (status, code, class) in cases {
            assert_eq!(
                class_of(status, code),
                class,
                "HTTP {status}, code {code:?}"
            );
        }
        let unreadable = classify(404, b"<html>", TOKEN, &[]);
        assert_eq!(
            unreadable,
            SendError::GiveUp {
                code: 404,
                message: "HTTP 404".into()
            }
        );
    }

    #[test]
    fn retry_delays_back_off_with_jitter_and_honour_retry_after() {
        let base = RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(200),
        };
        let slow = RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_secs(60),
        };
        let base = &base;
        for _ in 0..100 {
            let first = retry_delay(base, 1, None).unwrap();
            assert!((Duration::from_millis(100)..=Duration::from_millis(300)).contains(&first));
            let third = retry_delay(base, 3, None).unwrap();
            assert!((Duration::from_millis(400)..=Duration::from_millis(1200)).contains(&third));
            assert!(retry_delay(&slow, 9, None).unwrap() <= MAX_RETRY_DELAY);
            let told = retry_delay(base, 1, Some(Duration::from_secs(2))).unwrap();
            assert_eq!(told, Duration::from_secs(2));
        }
        assert_eq!(retry_delay(base, 1, Some(Duration::from_secs(60))), None);
    }

    #[test]
    fn the_pacer_spaces_each_number_at_its_throughput() {
        let pacer = Pacer::new(MESSAGES_PER_SECOND);
        let step = Duration::from_micros(12_500);
        let now = Instant::now();
        assert_eq!(pacer.reserve("A", now), now);
        assert_eq!(pacer.reserve("A", now), now + step);
        assert_eq!(pacer.reserve("A", now + step / 2), now + 2 * step);
        assert_eq!(pacer.reserve("B", now), now, "numbers are paced separately");
        let later = now + Duration::from_secs(1);
        assert_eq!(
            pacer.reserve("A", later),
            later,
            "idle time is not saved up"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn eighty_one_calls_to_one_number_take_a_second() {
        let pacer = Pacer::new(MESSAGES_PER_SECOND);
        let started = Instant::now();
        for _ in 0..81 {
            pacer.wait("A").await;
        }
        let elapsed = started.elapsed();
        assert!(
            (Duration::from_secs(1)..Duration::from_millis(1002)).contains(&elapsed),
            "{elapsed:?}"
        );
    }
}
