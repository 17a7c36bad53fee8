//! Chatwoot's webhooks: `POST /desk/{phone_number_id}/{desk_token}`. The token (from the
//! tenant's desk secret, `<stack>/desk/<phone_number_id>`) is compared in constant time; when the tenant also keeps Chatwoot's
//! webhook secret, `X-Chatwoot-Signature` must match too. Anything unauthenticated gets 401
//! and nothing is queued. An authenticated event is read ([`chatwoot::desk_event`]) and put
//! on the inbound FIFO queue in its conversation's group: the worker applies it in order,
//! once. The token is never logged.

pub mod chatwoot;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use shared::envelope::{Envelope, Payload};
use shared::queue::{self, InboundQueue, QueueEntry};
use shared::secrets::{DeskSecrets, DeskTokens, SecretError};
use shared::support::cache::TtlCache;
use shared::support::config::{self, ConfigError, DESK_SECRET_PREFIX, INBOUND_QUEUE_URL};
use shared::support::metrics::Metrics;
use shared::support::retry::RetryPolicy;
use shared::whatsapp::signature;
use subtle::ConstantTimeEq;

/// Chatwoot's webhook bodies are small; anything larger is not from it.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The desk function's configuration: the queue and where the tenants' desk secrets are.
pub struct Settings {
    pub queue_url: String,
    pub desk_secret_prefix: String,
}

impl Settings {
    pub fn from_env() -> Result<Settings, ConfigError> {
        Ok(Settings {
            queue_url: config::required(INBOUND_QUEUE_URL)?,
            desk_secret_prefix: config::required(DESK_SECRET_PREFIX)?,
        })
    }
}
pub const SIGNATURE_HEADER: &str = "x-chatwoot-signature";
pub const TIMESTAMP_HEADER: &str = "x-chatwoot-timestamp";
/// A signed request older (or newer) than this is a replay.
pub const MAX_SIGNATURE_AGE_SECONDS: i64 = 300;
/// Desk secrets, and the absence of one, are kept this long per container (in a cache of
/// bounded size): a number repeated in forged URLs costs one Secrets Manager call a minute
/// at most, and a wrong token for a known number none.
const SECRET_TTL: Duration = Duration::from_secs(60);
/// Meta's phone number ids are about 15 digits; longer is not a number of ours.
const MAX_NUMBER_DIGITS: usize = 20;

pub struct DeskWebhook<T, Q> {
    tokens: T,
    queue: Q,
    retry: RetryPolicy,
    secrets: TtlCache<Option<Arc<DeskSecrets>>>,
}

impl<T: DeskTokens, Q: InboundQueue> DeskWebhook<T, Q> {
    pub fn new(tokens: T, queue: Q) -> Self {
        Self {
            tokens,
            queue,
            retry: RetryPolicy::default(),
            secrets: TtlCache::new(SECRET_TTL),
        }
    }

    pub async fn handle(&self, request: Request) -> Response<Body> {
        let mut metrics = Metrics::new("desk");
        let response = if request.method() == Method::POST {
            self.receive(&request, &mut metrics).await
        } else {
            reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        };
        metrics.emit();
        response
    }

    async fn receive(&self, request: &Request, metrics: &mut Metrics) -> Response<Body> {
        let body: &[u8] = request.body();
        if body.len() > MAX_BODY_BYTES {
            metrics.count("OversizedBodies", 1);
            return reply(StatusCode::PAYLOAD_TOO_LARGE, "payload too large");
        }
        let Some((number, token)) = route(request.uri().path()) else {
            tracing::warn!("desk webhook refused: not /desk/<number>/<token>");
            metrics.count("Unauthorized", 1);
            return reply(StatusCode::UNAUTHORIZED, "unauthorized");
        };
        let secrets = match self.tenant_secrets(number).await {
            Ok(secrets) => secrets,
            Err(error) => {
                tracing::error!(%error, phone_number_id = number, "desk secret unavailable: failing closed");
                metrics.count("SecretUnavailable", 1);
                return reply(StatusCode::INTERNAL_SERVER_ERROR, "temporarily unavailable");
            }
        };
        if let Err(reason) = authenticate(secrets.as_deref(), token, request, body) {
            tracing::warn!(phone_number_id = number, reason, "desk webhook refused");
            metrics.count("Unauthorized", 1);
            return reply(StatusCode::UNAUTHORIZED, "unauthorized");
        }
        let event = match chatwoot::desk_event(number, body) {
            Ok(Some(event)) => event,
            Ok(None) => {
                metrics.count("IgnoredEvents", 1);
                return reply(StatusCode::OK, "ignored");
            }
            Err(chatwoot::Unreadable(reason)) => {
                // A retry cannot help: logged and counted, answered 200.
                tracing::warn!(%reason, phone_number_id = number, "desk webhook unreadable");
                metrics.count("UnreadableEvents", 1);
                return reply(StatusCode::OK, "ignored");
            }
        };
        let entry = QueueEntry::from_envelope(&Envelope::new(Payload::Desk(event)));
        match queue::enqueue_all(&self.queue, std::slice::from_ref(&entry), self.retry).await {
            Ok(_) => {
                tracing::info!(phone_number_id = number, "desk event queued");
                metrics.count("Events", 1);
                reply(StatusCode::OK, "ok")
            }
            Err(error) => {
                tracing::error!(%error, "desk event not queued; answering 500 so Chatwoot retries");
                metrics.count("EnqueueFailures", 1);
                reply(StatusCode::INTERNAL_SERVER_ERROR, "temporarily unavailable")
            }
        }
    }

    /// The tenant's desk secret, `None` when there is none for this number.
    async fn tenant_secrets(&self, number: &str) -> Result<Option<Arc<DeskSecrets>>, SecretError> {
        if let Some(cached) = self.secrets.get(number) {
            return Ok(cached);
        }
        let secrets = match self.tokens.tenant_secrets(number).await {
            Ok(secrets) => Some(Arc::new(secrets)),
            Err(SecretError::NotFound(_)) => None,
            Err(error) => return Err(error),
        };
        self.secrets.insert(number, secrets.clone());
        Ok(secrets)
    }
}

/// `/desk/<digits>/<token>` (any stage prefix before it).
fn route(path: &str) -> Option<(&str, &str)> {
    let mut segments = path.trim_end_matches('/').rsplit('/');
    let token = segments.next()?;
    let number = segments.next()?;
    (segments.next()? == "desk"
        && !token.is_empty()
        && !number.is_empty()
        && number.len() <= MAX_NUMBER_DIGITS
        && number.bytes().all(|b| b.is_ascii_digit()))
    .then_some((number, token))
}

/// The desk token in constant time, then Chatwoot's signature when the tenant keeps its
/// webhook secret. Fails closed: no secret or no token configured is a refusal.
fn authenticate(
    secrets: Option<&DeskSecrets>,
    token: &str,
    request: &Request,
    body: &[u8],
) -> Result<(), &'static str> {
    let secrets = secrets.ok_or("no desk secret for this number")?;
    let expected = secrets
        .desk_token()
        .map_err(|_| "desk_token not configured")?;
    if !bool::from(expected.as_bytes().ct_eq(token.as_bytes())) {
        return Err("wrong desk token");
    }
    let Some(webhook_secret) = secrets.chatwoot_webhook_secret() else {
        return Ok(());
    };
    let headers = request.headers();
    let timestamp = headers
        .get(TIMESTAMP_HEADER)
        .ok_or("signature timestamp missing")?
        .as_bytes();
    let age = std::str::from_utf8(timestamp)
        .ok()
        .and_then(|t| t.parse::<i64>().ok())
        .map(|t| Utc::now().timestamp().abs_diff(t))
        .ok_or("signature timestamp malformed")?;
    if age > MAX_SIGNATURE_AGE_SECONDS.unsigned_abs() {
        return Err("signature timestamp too old");
    }
    let header = headers.get(SIGNATURE_HEADER).map(|v| v.as_bytes());
    signature::verify_chatwoot(webhook_secret.as_bytes(), timestamp, body, header)
        .map_err(|error| error.reason())
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
    use super::route;

    #[test]
    fn the_route_names_the_number_and_the_token() {
        assert_eq!(
            route("/desk/106540352242922/s3cr3t"),
            Some(("106540352242922", "s3cr3t"))
        );
        assert_eq!(route("/prod/desk/1/t/"), Some(("1", "t")));
        assert_eq!(route("/desk/abc/t"), None);
        assert_eq!(route(&format!("/desk/{}/t", "1".repeat(21))), None);
        assert_eq!(route("/desk/1/"), None);
        assert_eq!(route("/other/1/t"), None);
        assert_eq!(route("/"), None);
    }
}
