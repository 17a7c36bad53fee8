//! The Anthropic Messages API adapter (no Rust SDK exists): `POST {base}/v1/messages` with
//! `x-api-key` and `anthropic-version`. Retries in process what Anthropic says is
//! transient (429 after its `retry-after`, 529, 5xx, network) with jittered backoff, never
//! past the caller's time limit; 400, 401, 403 and the spend-limit 429 are never retried.

use std::fmt::Write as _;
use std::time::Duration;

use reqwest::header::RETRY_AFTER;
use serde::Deserialize;
use tokio::time::Instant;

use crate::ai::{AiError, Assistant, MessagesRequest, MessagesResponse};
use crate::support::retry::RetryPolicy;
use crate::support::text::truncate_chars;

pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
pub const API_VERSION: &str = "2023-06-01";
/// Per call: well under the worker's 60 s, so a stuck call is retried or handed to a
/// person while the invocation still has time to answer the customer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// A call is not started with less time than this left.
const MIN_CALL_TIME: Duration = Duration::from_secs(2);
/// Calls per answer, the first included, and the first backoff (doubled, with jitter).
pub const DEFAULT_RETRY: RetryPolicy = RetryPolicy {
    attempts: 4,
    base_delay: Duration::from_millis(500),
};
const MAX_BACKOFF: Duration = Duration::from_secs(8);
const MAX_ERROR_MESSAGE: usize = 300;

/// Built once per container: one connection pool.
#[derive(Debug)]
pub struct ClaudeClient {
    http: reqwest::Client,
    url: String,
    retry: RetryPolicy,
}

impl ClaudeClient {
    /// `base_url` is usually [`DEFAULT_BASE_URL`] (`ANTHROPIC_BASE_URL` overrides it).
    pub fn new(base_url: &str) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // `x-api-key` is a custom header: a redirect would carry it to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client (TLS backend) initialises");
        Self {
            http,
            url: format!("{}/v1/messages", base_url.trim_end_matches('/')),
            retry: DEFAULT_RETRY,
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    async fn call(
        &self,
        api_key: &str,
        request: &MessagesRequest,
        timeout: Duration,
    ) -> Result<MessagesResponse, Failure> {
        let response = self
            .http
            .post(&self.url)
            .timeout(timeout)
            .header("x-api-key", api_key)
            .header("anthropic-version", API_VERSION)
            .json(request)
            .send()
            .await
            .map_err(|error| Failure::transient(crate::support::http::describe(&error), None))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok()?.trim().parse::<f64>().ok())
            .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
            .map(Duration::from_secs_f64);
        let request_id = response
            .headers()
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await.unwrap_or_default();
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes)
                .map_err(|error| Failure::transient(format!("unreadable answer: {error}"), None));
        }
        Err(classify(status, &bytes, request_id, retry_after))
    }
}

impl Assistant for ClaudeClient {
    async fn create_message(
        &self,
        api_key: &str,
        request: &MessagesRequest,
        until: Instant,
    ) -> Result<MessagesResponse, AiError> {
        if api_key.is_empty() {
            return Err(AiError::NoKey("anthropic_api_key is empty".into()));
        }
        let attempts = self.retry.attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let left = until.saturating_duration_since(Instant::now());
            let (message, retry_after) =
                match self.call(api_key, request, REQUEST_TIMEOUT.min(left)).await {
                    Ok(response) => return Ok(response),
                    Err(Failure::Refused(error)) => {
                        tracing::warn!(%error, "Claude refused the request");
                        return Err(error);
                    }
                    Err(Failure::Transient {
                        message,
                        retry_after,
                    }) => (message, retry_after),
                };
            let delay = backoff(&self.retry, attempt, retry_after);
            let left = until.saturating_duration_since(Instant::now());
            if attempt >= attempts || delay + MIN_CALL_TIME > left {
                tracing::warn!(attempts = attempt, error = %message, "Claude unavailable, giving up");
                return Err(AiError::Unavailable {
                    attempts: attempt,
                    message,
                });
            }
            tracing::warn!(
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %message,
                "Claude call failed transiently, retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

enum Failure {
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    Refused(AiError),
}

impl Failure {
    fn transient(message: String, retry_after: Option<Duration>) -> Self {
        Failure::Transient {
            message,
            retry_after,
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
    request_id: Option<String>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Option<ErrorCode>,
}

#[derive(Deserialize)]
struct ErrorCode {
    error_code: Option<String>,
}

/// Sorts an error response: retry (429, 408, 409, 5xx, 529) or refuse. A 429 that is a
/// spend limit is refused: retrying fails until someone raises the limit.
fn classify(
    status: u16,
    body: &[u8],
    request_id: Option<String>,
    retry_after: Option<Duration>,
) -> Failure {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
    let (mut kind, mut message, mut id) = (format!("HTTP {status}"), String::new(), request_id);
    if let Some(parsed) = parsed {
        kind = parsed
            .error
            .details
            .and_then(|d| d.error_code)
            .unwrap_or(parsed.error.kind);
        message = parsed.error.message;
        id = id.or(parsed.request_id);
    }
    message.truncate(truncate_chars(&message, MAX_ERROR_MESSAGE).len());
    if let Some(id) = id {
        let _ = write!(message, " [request {id}]");
    }
    let spend_limit = kind == "enforced_spend_limit_reached";
    match status {
        429 if !spend_limit => {
            Failure::transient(format!("HTTP 429 {kind}: {message}"), retry_after)
        }
        408 | 409 | 500..=599 => {
            Failure::transient(format!("HTTP {status} {kind}: {message}"), retry_after)
        }
        _ => Failure::Refused(AiError::Refused {
            status,
            kind,
            message,
        }),
    }
}

/// Exponential backoff with jitter, or Anthropic's `retry-after` when longer.
fn backoff(policy: &RetryPolicy, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let jittered = policy.backoff(attempt, MAX_BACKOFF);
    retry_after.map_or(jittered, |wait| wait.max(jittered))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(failure: Failure) -> Option<AiError> {
        match failure {
            Failure::Refused(error) => Some(error),
            Failure::Transient { .. } => None,
        }
    }

    fn body(kind: &str, code: Option<&str>) -> Vec<u8> {
        let mut error = serde_json::json!({"type": kind, "message": "m"});
        if let Some(code) = code {
            error["details"] = serde_json::json!({"error_code": code});
        }
        serde_json::json!({"type": "error", "error": error, "request_id": "req_1"})
            .to_string()
            .into_bytes()
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed_and_the_key_stays() {
        use axum::http::{HeaderMap, StatusCode, header::LOCATION};
        use std::sync::{Arc, Mutex};
        async fn serve(app: axum::Router) -> String {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            url
        }
        let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let recorded = seen.clone();
        let elsewhere = serve(axum::Router::new().fallback(move |headers: HeaderMap| {
            let key = headers
                .get("x-api-key")
                .map(|v| v.to_str().unwrap().to_owned());
            recorded.lock().unwrap().push(key);
            async { StatusCode::OK }
        }))
        .await;
        // Another host by name, keeping the method and body (307).
        let target = format!(
            "{}/v1/messages",
            elsewhere.replace("127.0.0.1", "localhost")
        );
        let redirecting = serve(axum::Router::new().fallback(move || {
            let target = target.clone();
            async move { (StatusCode::TEMPORARY_REDIRECT, [(LOCATION, target)]) }
        }))
        .await;
        let request = MessagesRequest {
            model: "claude-test".into(),
            max_tokens: 16,
            system: Vec::new(),
            messages: Vec::new(),
            tools: Vec::new(),
        };
        let client = ClaudeClient::new(&redirecting).with_retry(RetryPolicy {
            attempts: 1,
            base_delay: Duration::ZERO,
        });
        let until = Instant::now() + Duration::from_secs(30);
        assert!(
            client
                .create_message("sk-ant-key", &request, until)
                .await
                .is_err()
        );
        assert_eq!(*seen.lock().unwrap(), [], "the other host got the key");
    }

    #[test]
    fn rate_limits_overload_and_server_errors_are_retried_others_refused() {
        for status in [429, 529, 500, 503, 408, 409] {
            assert!(
                refused(classify(status, &body("api_error", None), None, None)).is_none(),
                "{status}"
            );
        }
        for (status, kind) in [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
        ] {
            let error = refused(classify(status, &body(kind, None), None, None)).unwrap();
            assert_eq!(
                error.to_string(),
                format!("Claude refused the request (HTTP {status}, {kind}): m [request req_1]")
            );
        }
    }

    #[test]
    fn the_spend_limit_429_is_refused_and_needs_attention() {
        let error = refused(classify(
            429,
            &body("rate_limit_error", Some("enforced_spend_limit_reached")),
            None,
            None,
        ))
        .expect("never retried");
        assert!(error.needs_attention());
        let unauthorised = refused(classify(
            401,
            &body("authentication_error", None),
            None,
            None,
        ))
        .unwrap();
        assert!(unauthorised.needs_attention());
        let bad = refused(classify(
            400,
            &body("invalid_request_error", None),
            None,
            None,
        ));
        assert!(!bad.unwrap().needs_attention());
    }

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        let policy = DEFAULT_RETRY;
        let base = policy.base_delay;
        for _ in 0..100 {
            let first = backoff(&policy, 1, None);
            assert!((base / 2..=base * 3 / 2).contains(&first));
            assert!(backoff(&policy, 3, None) >= base * 2);
            assert!(backoff(&policy, 30, None) <= MAX_BACKOFF);
            assert!(backoff(&policy, 1, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
        }
    }
}
