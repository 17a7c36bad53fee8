//! Meta's webhook endpoint: `GET /webhook` answers the subscription check, `POST /webhook`
//! verifies the signature over the raw body and puts every message and status on the
//! inbound FIFO queue. No tenant lookup here: the worker does that.

use std::sync::Arc;

use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use shared::queue::{self, InboundQueue, QueueEntry};
use shared::secrets::{AppSecretCache, AppSecrets, SecretError, SecretSource};
use shared::support::config::{self, APP_SECRET_ID, ConfigError, INBOUND_QUEUE_URL};
use shared::support::metrics::Metrics;
use shared::support::retry::RetryPolicy;
use shared::whatsapp::signature::{self, SignatureError};
use shared::whatsapp::webhook::{self, Split};
use subtle::ConstantTimeEq;

/// Meta sends bodies of up to 3 MB.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The webhook's configuration: its secret (`<stack>/app`) and the queue.
pub struct Settings {
    pub app_secret_id: String,
    pub queue_url: String,
}

impl Settings {
    pub fn from_env() -> Result<Settings, ConfigError> {
        Ok(Settings {
            app_secret_id: config::required(APP_SECRET_ID)?,
            queue_url: config::required(INBOUND_QUEUE_URL)?,
        })
    }
}

/// The SQS client: the webhook retries what SQS did not accept itself
/// ([`queue::enqueue_all`]), with jitter and a bounded total, so the SDK does not retry on
/// top of it, and one attempt waits at most 5 s.
pub fn queue_client(aws: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::config::Builder::from(aws)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(std::time::Duration::from_secs(5))
                .build(),
        )
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

pub struct Webhook<S, Q> {
    secrets: AppSecretCache<S>,
    queue: Q,
    retry: RetryPolicy,
}

/// A POST body that passed the signature check, split into queue entries.
#[derive(Debug)]
pub struct Accepted {
    pub split: Split,
    pub entries: Vec<QueueEntry>,
}

/// Verify + parse + build the queue entries: the whole CPU-bound part of a POST.
/// `Ok(None)` is a signed body that is not a WhatsApp payload.
pub fn accept(
    app_secret: &[u8],
    body: &[u8],
    signature_header: Option<&[u8]>,
) -> Result<Option<Accepted>, SignatureError> {
    signature::verify(app_secret, body, signature_header)?;
    let split = match webhook::split(body) {
        Ok(split) => split,
        Err(reason) => {
            tracing::info!(%reason, "signed body is not a WhatsApp webhook; ignored");
            return Ok(None);
        }
    };
    let entries = split
        .envelopes
        .iter()
        .map(QueueEntry::from_envelope)
        .collect();
    Ok(Some(Accepted { split, entries }))
}

impl<S: SecretSource, Q: InboundQueue> Webhook<S, Q> {
    pub fn new(secrets: S, queue: Q) -> Self {
        Self {
            secrets: AppSecretCache::new(secrets),
            queue,
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Fetches the stack secret during the init phase, so the first request does not pay
    /// for it. A failure is only logged: requests retry the fetch.
    pub async fn warm(&self) {
        if let Err(error) = self.secrets.get().await {
            tracing::error!(%error, "stack secret not available at start-up");
        }
    }

    pub async fn handle(&self, request: Request) -> Response<Body> {
        let mut metrics = Metrics::new("webhook");
        let response = match *request.method() {
            Method::GET => self.verify_subscription(&request, &mut metrics).await,
            Method::POST => self.receive(&request, &mut metrics).await,
            _ => reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        };
        metrics.emit();
        response
    }

    async fn verify_subscription(
        &self,
        request: &Request,
        metrics: &mut Metrics,
    ) -> Response<Body> {
        let params = request.query_string_parameters();
        let (Some("subscribe"), Some(token), Some(challenge)) = (
            params.first("hub.mode"),
            params.first("hub.verify_token"),
            params.first("hub.challenge"),
        ) else {
            metrics.count("VerificationsRefused", 1);
            return reply(StatusCode::FORBIDDEN, "forbidden");
        };
        let Some(secrets) = self.current_secrets(metrics).await else {
            return reply(StatusCode::INTERNAL_SERVER_ERROR, "temporarily unavailable");
        };
        let matches = |secrets: &AppSecrets| -> Result<bool, SecretError> {
            let expected = secrets.verify_token()?;
            Ok(bool::from(expected.as_bytes().ct_eq(token.as_bytes())))
        };
        // A wrong or missing token may mean the secret was just rotated or configured.
        let verified = match matches(&secrets) {
            Ok(true) => Ok(true),
            first => match self.secrets.refresh(&secrets).await {
                Some(fresh) => matches(&fresh),
                None => first,
            },
        };
        match verified {
            Ok(true) => {
                tracing::info!("webhook subscription verified");
                Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "text/plain")
                    .body(Body::Text(challenge.to_owned()))
                    .expect("a static response is valid")
            }
            Ok(false) => {
                tracing::warn!("webhook subscription refused: wrong verify token");
                metrics.count("VerificationsRefused", 1);
                reply(StatusCode::FORBIDDEN, "forbidden")
            }
            Err(error) => {
                tracing::error!(%error, "verify token not configured: failing closed");
                metrics.count("SecretUnavailable", 1);
                reply(StatusCode::INTERNAL_SERVER_ERROR, "temporarily unavailable")
            }
        }
    }

    async fn receive(&self, request: &Request, metrics: &mut Metrics) -> Response<Body> {
        let body: &[u8] = request.body();
        if body.len() > MAX_BODY_BYTES {
            tracing::warn!(
                bytes = body.len(),
                limit = MAX_BODY_BYTES,
                "webhook body too large"
            );
            metrics.count("OversizedBodies", 1);
            return reply(StatusCode::PAYLOAD_TOO_LARGE, "payload too large");
        }
        let Some(secrets) = self.current_secrets(metrics).await else {
            return reply(StatusCode::INTERNAL_SERVER_ERROR, "temporarily unavailable");
        };
        let header = request
            .headers()
            .get(signature::HEADER)
            .map(|value| value.as_bytes());
        let accepted = match self.accept_with_rotation(&secrets, body, header).await {
            Ok(accepted) => accepted,
            Err(Rejection::Signature(error)) => {
                tracing::warn!(reason = error.reason(), "webhook signature rejected");
                metrics.count("SignatureFailures", 1);
                return reply(StatusCode::UNAUTHORIZED, "invalid signature");
            }
            Err(Rejection::NotConfigured(error)) => {
                tracing::error!(%error, "app secret not configured: failing closed");
                metrics.count("SecretUnavailable", 1);
                return reply(StatusCode::INTERNAL_SERVER_ERROR, "temporarily unavailable");
            }
        };
        let Some(Accepted { split, entries }) = accepted else {
            metrics.count("NotWhatsApp", 1);
            return reply(StatusCode::OK, "ok");
        };
        record(&split, metrics);
        match queue::enqueue_all(&self.queue, &entries, self.retry).await {
            Ok(report) => {
                metrics.count("QueueRetries", report.retried_entries);
                tracing::info!(
                    messages = split.messages(),
                    statuses = split.statuses(),
                    echoes = split.echoes(),
                    preferences = split.preferences(),
                    waba_signals = split.waba_signals(),
                    ignored = split.ignored_fields.len(),
                    skipped = split.skipped,
                    queue_calls = report.calls,
                    "webhook queued"
                );
                reply(StatusCode::OK, "ok")
            }
            Err(error) => {
                metrics.count("QueueRetries", error.report.retried_entries);
                metrics.count("EnqueueFailures", 1);
                tracing::error!(%error, "webhook not fully queued; answering 500 so Meta retries");
                reply(StatusCode::INTERNAL_SERVER_ERROR, "temporarily unavailable")
            }
        }
    }

    /// Checks with the cached secret and, when it does not match or is not configured, once
    /// more with a refreshed one (it may have just been rotated or set); the cache
    /// rate-limits refreshes.
    async fn accept_with_rotation(
        &self,
        secrets: &Arc<AppSecrets>,
        body: &[u8],
        header: Option<&[u8]>,
    ) -> Result<Option<Accepted>, Rejection> {
        let attempt = |secrets: &AppSecrets| {
            let app_secret = secrets.app_secret().map_err(Rejection::NotConfigured)?;
            accept(app_secret, body, header).map_err(Rejection::Signature)
        };
        match attempt(secrets) {
            first @ (Err(Rejection::Signature(SignatureError::Mismatch))
            | Err(Rejection::NotConfigured(_))) => match self.secrets.refresh(secrets).await {
                Some(fresh) => attempt(&fresh),
                None => first,
            },
            other => other,
        }
    }

    async fn current_secrets(&self, metrics: &mut Metrics) -> Option<Arc<AppSecrets>> {
        match self.secrets.get().await {
            Ok(secrets) => Some(secrets),
            Err(error) => {
                tracing::error!(%error, "stack secret unavailable: failing closed");
                metrics.count("SecretUnavailable", 1);
                None
            }
        }
    }
}

enum Rejection {
    Signature(SignatureError),
    NotConfigured(SecretError),
}

fn record(split: &Split, metrics: &mut Metrics) {
    for field in &split.ignored_fields {
        tracing::debug!(field, "webhook change ignored");
    }
    if !split.meta_error_codes.is_empty() {
        tracing::warn!(codes = ?split.meta_error_codes, "webhook carries errors reported by Meta");
    }
    metrics
        .count("Messages", split.messages())
        .count("Statuses", split.statuses())
        .count("BusinessEchoes", split.echoes())
        .count("Preferences", split.preferences())
        .count("WabaSignals", split.waba_signals())
        .count("IgnoredChanges", split.ignored_fields.len())
        .count("SkippedItems", split.skipped)
        .count("MetaErrors", split.meta_error_codes.len());
}

fn reply(status: StatusCode, text: &'static str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::Text(text.to_owned()))
        .expect("a static response is valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::queue::QueueError;
    use shared::secrets::REFRESH_INTERVAL;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct FakeSecrets {
        json: Mutex<String>,
        fetches: AtomicUsize,
    }

    impl SecretSource for &FakeSecrets {
        fn secret_id(&self) -> &str {
            "stack/app"
        }
        async fn fetch(&self) -> Result<String, SecretError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            Ok(self.json.lock().unwrap().clone())
        }
    }

    #[derive(Default)]
    struct FakeQueue {
        sent: Mutex<Vec<QueueEntry>>,
        down: bool,
    }

    impl InboundQueue for &FakeQueue {
        async fn send_batch(&self, entries: &[&QueueEntry]) -> Result<Vec<usize>, QueueError> {
            if self.down {
                return Err(QueueError("unavailable".into()));
            }
            self.sent
                .lock()
                .unwrap()
                .extend(entries.iter().map(|e| (*e).clone()));
            Ok(Vec::new())
        }
    }

    fn secrets(app_secret: &str) -> FakeSecrets {
        FakeSecrets {
            json: Mutex::new(format!(
                r#"{{"app_secret":"{app_secret}","verify_token":"token"}}"#
            )),
            fetches: AtomicUsize::new(0),
        }
    }

    const BODY: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"PN"},"messages":[{"from":"c1","id":"wamid.1","timestamp":"1","type":"text","text":{"body":"oi"}}]}}]}]}"#;

    fn post(secret: &str, body: &str) -> Request {
        lambda_http::http::Request::builder()
            .method("POST")
            .uri("/webhook")
            .header(
                signature::HEADER,
                signature::sign(secret.as_bytes(), body.as_bytes()),
            )
            .body(Body::Text(body.to_owned()))
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_rotated_app_secret_is_picked_up_but_junk_cannot_drive_secret_fetches() {
        let source = secrets("old");
        let queue = FakeQueue::default();
        let webhook = Webhook::new(&source, &queue);
        assert_eq!(webhook.handle(post("old", BODY)).await.status(), 200);

        *source.json.lock().unwrap() = r#"{"app_secret":"new","verify_token":"token"}"#.into();
        tokio::time::advance(REFRESH_INTERVAL).await;
        for _ in 0..50 {
            assert_eq!(webhook.handle(post("forged", BODY)).await.status(), 401);
        }
        // The first mismatch refreshes (and finds the rotated secret), then none for a minute.
        assert_eq!(source.fetches.load(Ordering::SeqCst), 2);
        assert_eq!(webhook.handle(post("new", BODY)).await.status(), 200);
        assert_eq!(webhook.handle(post("old", BODY)).await.status(), 401);

        tokio::time::advance(REFRESH_INTERVAL).await;
        assert_eq!(webhook.handle(post("forged", BODY)).await.status(), 401);
        assert_eq!(source.fetches.load(Ordering::SeqCst), 3);
        assert_eq!(
            queue.sent.lock().unwrap().len(),
            2,
            "only the signed posts were queued"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_app_secret_configured_after_start_is_used_once_the_refresh_allows() {
        let source = secrets("");
        let queue = FakeQueue::default();
        let webhook = Webhook::new(&source, &queue);
        assert_eq!(
            webhook.handle(post("", BODY)).await.status(),
            500,
            "empty secret fails closed"
        );
        *source.json.lock().unwrap() = r#"{"app_secret":"set"}"#.into();
        tokio::time::advance(REFRESH_INTERVAL).await;
        assert_eq!(webhook.handle(post("set", BODY)).await.status(), 200);
    }

    #[tokio::test(start_paused = true)]
    async fn a_queue_outage_answers_500_so_meta_retries() {
        let source = secrets("s");
        let queue = FakeQueue {
            down: true,
            ..FakeQueue::default()
        };
        let webhook = Webhook::new(&source, &queue);
        assert_eq!(webhook.handle(post("s", BODY)).await.status(), 500);
    }

    #[test]
    fn accept_builds_entries_with_the_design_keys() {
        let header = signature::sign(b"s", BODY.as_bytes());
        let accepted = accept(b"s", BODY.as_bytes(), Some(header.as_bytes()))
            .unwrap()
            .unwrap();
        assert_eq!(accepted.entries.len(), 1);
        assert_eq!(accepted.entries[0].group_id, "PN:c1");
        assert_eq!(accepted.entries[0].dedup_id, "wamid.1");
        assert!(
            accept(b"s", b"[]", Some(signature::sign(b"s", b"[]").as_bytes()))
                .unwrap()
                .is_none()
        );
    }

    /// Meta's marketing preference and account-level webhooks (no `phone_number_id` in the
    /// latter): signed, parsed and queued in the conversation's group or the account's.
    #[tokio::test(start_paused = true)]
    async fn preferences_and_account_signals_are_queued_with_their_keys() {
        let body = r#"{"object":"whatsapp_business_account","entry":[
          {"id":"W1","changes":[{"field":"user_preferences","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"551130000000","phone_number_id":"PN"},"user_preferences":[{"wa_id":"c1","user_id":"BR.1","category":"marketing_messages","value":"stop","timestamp":1789000000}]}}]},
          {"id":"W1","time":1789000100,"changes":[
            {"field":"message_template_status_update","value":{"event":"PAUSED","message_template_id":9,"message_template_name":"promo","message_template_language":"pt_BR","reason":"NONE"}},
            {"field":"phone_number_quality_update","value":{"display_phone_number":"551130000000","event":"FLAGGED","current_limit":"TIER_10K"}},
            {"field":"account_update","value":{"event":"ACCOUNT_RESTRICTION","restriction_info":[{"restriction_type":"RESTRICTED_BIZ_INITIATED_MESSAGING","expiration":1789600000}]}}]}]}"#;
        let source = secrets("s");
        let queue = FakeQueue::default();
        let webhook = Webhook::new(&source, &queue);
        assert_eq!(webhook.handle(post("forged", body)).await.status(), 401);
        assert!(
            queue.sent.lock().unwrap().is_empty(),
            "nothing unsigned queued"
        );
        assert_eq!(webhook.handle(post("s", body)).await.status(), 200);
        let sent = queue.sent.lock().unwrap();
        let mut keys: Vec<_> = sent
            .iter()
            .map(|e| (e.group_id.as_str(), e.dedup_id.as_str()))
            .collect();
        // Each group in order (a stable sort by group); groups in any order.
        keys.sort_by_key(|(group, _)| *group);
        assert_eq!(
            keys,
            [
                ("PN:c1", "pref:PN:c1:stop:1789000000"),
                (
                    "waba:W1",
                    "waba:W1:message_template_status_update:promo#pt_BR:PAUSED:1789000100"
                ),
                (
                    "waba:W1",
                    "waba:W1:phone_number_quality_update:551130000000:FLAGGED:1789000100"
                ),
                (
                    "waba:W1",
                    "waba:W1:account_update:account:ACCOUNT_RESTRICTION:1789000100"
                ),
            ]
        );
        for entry in sent.iter() {
            shared::envelope::Envelope::from_json(&entry.body).expect("the worker reads it");
        }
    }
}
