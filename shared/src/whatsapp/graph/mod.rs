//! The WhatsApp Cloud API sender: turns an [`Outbound`] into a Graph API request, paces
//! requests to Meta's per-number throughput, retries in process only what Meta clearly did
//! not accept, and sorts every other failure into unknown, give-up or alarm so the SQS
//! worker knows whether to fail the record (SQS redelivers it), wait for a status, record
//! it, or wake a person. Each call starts only when its whole timeout fits before the
//! invocation's deadline.

mod body;
mod media;
mod templates;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use reqwest::header::RETRY_AFTER;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{CALL_TIMEOUT, MARK_READ_TIMEOUT, MAX_CALLBACK_DATA, Media, SendError, Sender, Sent};
use crate::support::deadline::Deadline;
use crate::support::retry::RetryPolicy;
use crate::support::text::truncate_chars;
use crate::whatsapp::outbound::{Choice, LimitError, Outbound, Section, TemplateComponent};
use body::message_body;

pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com";
/// Per call, connecting included: a stuck call fails well inside the worker's own timeout.
pub const REQUEST_TIMEOUT: Duration = CALL_TIMEOUT;
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
    /// A send's timeout per call ([`REQUEST_TIMEOUT`]; shorter in tests).
    timeout: Duration,
    pacer: Pacer,
}

impl GraphClient {
    /// `base_url` is usually [`DEFAULT_BASE_URL`]; `version` a Graph version like `v23.0`.
    pub fn new(base_url: impl Into<String>, version: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            // Redirects would carry the token to wherever they point (see `media`).
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client (TLS backend) initialises");
        Self {
            http,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            version: version.into().trim_matches('/').to_owned(),
            retry: DEFAULT_RETRY,
            timeout: REQUEST_TIMEOUT,
            pacer: Pacer::new(MESSAGES_PER_SECOND),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// A send's timeout per call, at most [`REQUEST_TIMEOUT`] (the port's promise).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.min(REQUEST_TIMEOUT);
        self
    }

    /// POSTs `body` to the number's `/messages` edge, retrying what Meta clearly did not
    /// accept while another attempt fits before `deadline`, and returns the status and body
    /// of the accepted response. Strings in `hide` (the token, the recipient) are removed
    /// from any error text.
    async fn post(
        &self,
        phone_number_id: &str,
        body: &Value,
        token: &str,
        hide: &[&str],
        kind: Post,
        deadline: Deadline,
    ) -> Result<(u16, Vec<u8>), SendError> {
        check_id(phone_number_id)?;
        let url = format!(
            "{}/{}/{phone_number_id}/messages",
            self.base_url, self.version
        );
        let (timeout, attempts) = match kind {
            Post::Message => (self.timeout, self.retry.attempts.max(1)),
            Post::Read => (MARK_READ_TIMEOUT, 1),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            if !deadline.fits(timeout) {
                return Err(not_started(deadline, timeout));
            }
            self.pacer.wait(phone_number_id).await;
            let call = self.call(&url, token, body, hide, kind, timeout);
            let Failure { error, retry_after } = match call.await {
                Ok(accepted) => return Ok(accepted),
                Err(failure) => failure,
            };
            let delay = if error.is_retryable() && attempt < attempts {
                retry_delay(&self.retry, attempt, retry_after)
                    .filter(|delay| deadline.fits(*delay + timeout))
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

    /// One HTTP call of at most `timeout`.
    async fn call(
        &self,
        url: &str,
        token: &str,
        body: &Value,
        hide: &[&str],
        kind: Post,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), Failure> {
        let response = self
            .http
            .post(url)
            .timeout(timeout)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(|error| Failure {
                error: network_failure(&error, kind, token, hide),
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
            return Ok((status, bytes));
        }
        let error = match classify(status, &bytes, token, hide) {
            // A 5xx may come after Meta took the message; a throttling answer says it did not.
            SendError::RetryLater { code, message }
                if kind == Post::Message && status >= 500 && !code.is_some_and(is_throttling) =>
            {
                SendError::Unknown { message }
            }
            error => error,
        };
        Err(Failure { error, retry_after })
    }
}

/// A message may be delivered by a call Meta answered badly; a mark-as-read only marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Post {
    Message,
    Read,
}

/// A call that got no answer. Only a failure to connect proves the request never reached
/// Meta; after that (a timeout, a reset, a cut answer) a message may have been taken.
fn network_failure(error: &reqwest::Error, kind: Post, token: &str, hide: &[&str]) -> SendError {
    let message = redact(crate::support::http::describe(error), token, hide);
    if kind == Post::Message && !error.is_connect() {
        SendError::Unknown { message }
    } else {
        SendError::RetryLater {
            code: None,
            message,
        }
    }
}

/// Nothing was sent: the call's timeout does not fit before the deadline.
fn not_started(deadline: Deadline, timeout: Duration) -> SendError {
    SendError::RetryLater {
        code: None,
        message: format!(
            "not started: {} ms left, a call may take {} ms",
            deadline.remaining().as_millis(),
            timeout.as_millis()
        ),
    }
}

impl Sender for GraphClient {
    async fn send(
        &self,
        phone_number_id: &str,
        token: &str,
        to: &str,
        message: &Outbound,
        callback_data: &str,
        deadline: Deadline,
    ) -> Result<Sent, SendError> {
        message.validate()?;
        if callback_data.chars().count() > MAX_CALLBACK_DATA {
            return Err(SendError::Invalid(LimitError {
                field: "biz_opaque_callback_data".into(),
                rule: format!("at most {MAX_CALLBACK_DATA} characters"),
            }));
        }
        let kind = message.kind();
        let mut body = message_body(to, message);
        if !callback_data.is_empty() {
            body["biz_opaque_callback_data"] = json!(callback_data);
        }
        let (status, body) = self
            .post(
                phone_number_id,
                &body,
                token,
                &[to],
                Post::Message,
                deadline,
            )
            .await?;
        let wamid = serde_json::from_slice::<SendResponse>(&body)
            .ok()
            .and_then(|response| response.messages.into_iter().next())
            .map(|message| message.id);
        match wamid {
            Some(wamid) => {
                // The wamid holds the recipient's number (base64): only its fingerprint at INFO.
                let wamid_hash = crate::support::telemetry::fingerprint(&wamid);
                tracing::info!(phone_number_id, kind, %wamid_hash, "message sent");
                Ok(Sent { wamid })
            }
            // Meta took the request; sending it again could deliver it twice.
            None => Err(SendError::Unknown {
                message: format!("HTTP {status} without a message id"),
            }),
        }
    }

    async fn mark_read(
        &self,
        phone_number_id: &str,
        token: &str,
        wamid: &str,
        typing: bool,
        deadline: Deadline,
    ) -> Result<(), SendError> {
        let mut body = json!({
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": wamid,
        });
        if typing {
            body["typing_indicator"] = json!({ "type": "text" });
        }
        self.post(phone_number_id, &body, token, &[], Post::Read, deadline)
            .await?;
        tracing::debug!(phone_number_id, typing, "message marked read");
        Ok(())
    }

    /// `GET /{version}/{media_id}` gives a short-lived URL on Meta's media hosts; the file
    /// is fetched from it with the same token (see `media`).
    async fn download_media(
        &self,
        token: &str,
        media_id: &str,
        deadline: Deadline,
    ) -> Result<Media, SendError> {
        self.download(token, media_id, deadline).await
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

/// Meta's answers that say "too many, slow down": the message was not taken.
fn is_throttling(code: i64) -> bool {
    matches!(code, 4 | 80007 | 130429 | 131056)
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
