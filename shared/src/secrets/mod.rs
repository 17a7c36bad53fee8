//! The stack secret (`APP_SECRET_ID`): Meta app secret, verify token, Anthropic key.
//!
//! Fetched once per container and cached. A signature or token mismatch may mean the secret
//! was rotated, so callers can ask for a refresh, which is rate-limited: junk requests cannot
//! drive Secrets Manager calls.

#[cfg(any(test, feature = "testing"))]
pub mod memory;
#[cfg(feature = "secrets-manager")]
pub mod secrets_manager;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// At most one refresh per interval once a secret is cached.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// While nothing is cached, at most one fetch per interval.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// A secret string whose `Debug` never shows the value.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<empty>"
        } else {
            "<redacted>"
        })
    }
}

/// The JSON object stored in the stack secret.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct AppSecrets {
    #[serde(default)]
    pub app_secret: Secret,
    #[serde(default)]
    pub verify_token: Secret,
    #[serde(default)]
    pub anthropic_api_key: Secret,
}

impl AppSecrets {
    /// The app secret, or an error when it is absent or empty: never skip validation.
    pub fn app_secret(&self) -> Result<&[u8], SecretError> {
        non_empty(&self.app_secret, "app_secret").map(str::as_bytes)
    }

    pub fn verify_token(&self) -> Result<&str, SecretError> {
        non_empty(&self.verify_token, "verify_token")
    }

    pub fn anthropic_api_key(&self) -> Result<&str, SecretError> {
        non_empty(&self.anthropic_api_key, "anthropic_api_key")
    }
}

fn non_empty<'a>(secret: &'a Secret, key: &'static str) -> Result<&'a str, SecretError> {
    match secret.expose() {
        "" => Err(SecretError::MissingKey(key)),
        value => Ok(value),
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SecretError {
    #[error("secret could not be read: {0}")]
    Unavailable(String),
    #[error("secret is not a JSON object of strings: {0}")]
    Malformed(String),
    #[error("secret has no value for `{0}`")]
    MissingKey(&'static str),
    #[error("secret not fetched: the last attempt failed less than {RETRY_INTERVAL:?} ago")]
    Backoff,
}

/// Port: where the stack secret's JSON string comes from.
pub trait SecretSource: Send + Sync {
    fn fetch(&self) -> impl Future<Output = Result<String, SecretError>> + Send;
}

/// A tenant's secret (`<stack>/tenants/<phone_number_id>`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct TenantSecrets {
    #[serde(default)]
    pub whatsapp_token: Secret,
    #[serde(default)]
    pub chatwoot_token: Secret,
    #[serde(default)]
    pub desk_token: Secret,
    /// The Chatwoot webhook's signing secret, when the tenant's Chatwoot signs webhooks:
    /// then `X-Chatwoot-Signature` is required too.
    #[serde(default)]
    pub chatwoot_webhook_secret: Secret,
}

impl TenantSecrets {
    pub fn whatsapp_token(&self) -> Result<&str, SecretError> {
        non_empty(&self.whatsapp_token, "whatsapp_token")
    }

    pub fn chatwoot_token(&self) -> Result<&str, SecretError> {
        non_empty(&self.chatwoot_token, "chatwoot_token")
    }

    pub fn desk_token(&self) -> Result<&str, SecretError> {
        non_empty(&self.desk_token, "desk_token")
    }

    pub fn chatwoot_webhook_secret(&self) -> Option<&str> {
        non_empty(&self.chatwoot_webhook_secret, "chatwoot_webhook_secret").ok()
    }
}

/// Port: a tenant's secret (tokens for WhatsApp and Chatwoot, the desk webhook's token).
pub trait TenantTokens: Send + Sync {
    fn tenant_secrets(
        &self,
        phone_number_id: &str,
    ) -> impl Future<Output = Result<TenantSecrets, SecretError>> + Send;
}

struct State {
    current: Option<Arc<AppSecrets>>,
    last_fetch: Option<Instant>,
}

pub struct AppSecretCache<S> {
    source: S,
    state: Mutex<State>,
}

impl<S: SecretSource> AppSecretCache<S> {
    pub fn new(source: S) -> Self {
        Self {
            source,
            state: Mutex::new(State {
                current: None,
                last_fetch: None,
            }),
        }
    }

    /// The cached secrets, fetched on first use.
    pub async fn get(&self) -> Result<Arc<AppSecrets>, SecretError> {
        let mut state = self.state.lock().await;
        if let Some(current) = &state.current {
            return Ok(current.clone());
        }
        if state
            .last_fetch
            .is_some_and(|at| at.elapsed() < RETRY_INTERVAL)
        {
            return Err(SecretError::Backoff);
        }
        let fresh = Arc::new(self.fetch(&mut state).await?);
        state.current = Some(fresh.clone());
        Ok(fresh)
    }

    /// Re-reads the secret after `stale` failed a check. Returns the new secrets when they
    /// differ from `stale`, `None` when nothing changed or the refresh is rate-limited.
    pub async fn refresh(&self, stale: &Arc<AppSecrets>) -> Option<Arc<AppSecrets>> {
        let mut state = self.state.lock().await;
        if let Some(current) = &state.current
            && !Arc::ptr_eq(current, stale)
        {
            return Some(current.clone());
        }
        if state
            .last_fetch
            .is_some_and(|at| at.elapsed() < REFRESH_INTERVAL)
        {
            return None;
        }
        match self.fetch(&mut state).await {
            Ok(fresh) if fresh != **stale => {
                let fresh = Arc::new(fresh);
                state.current = Some(fresh.clone());
                Some(fresh)
            }
            Ok(_) => None,
            Err(error) => {
                tracing::warn!(%error, "stack secret refresh failed, keeping the cached one");
                None
            }
        }
    }

    async fn fetch(&self, state: &mut State) -> Result<AppSecrets, SecretError> {
        state.last_fetch = Some(Instant::now());
        let json = self.source.fetch().await?;
        serde_json::from_str(&json).map_err(|e| SecretError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct FakeSource {
        value: StdMutex<Result<String, SecretError>>,
        calls: AtomicUsize,
    }

    impl FakeSource {
        fn holding(json: &str) -> Self {
            Self {
                value: StdMutex::new(Ok(json.into())),
                calls: AtomicUsize::new(0),
            }
        }
        fn set(&self, value: Result<String, SecretError>) {
            *self.value.lock().unwrap() = value;
        }
    }

    impl SecretSource for &FakeSource {
        async fn fetch(&self) -> Result<String, SecretError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.value.lock().unwrap().clone()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fetches_once_and_refreshes_at_most_once_a_minute() {
        let source = FakeSource::holding(r#"{"app_secret":"one","verify_token":"t"}"#);
        let cache = AppSecretCache::new(&source);
        let first = cache.get().await.unwrap();
        cache.get().await.unwrap();
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
        assert_eq!(first.app_secret().unwrap(), b"one");

        source.set(Ok(r#"{"app_secret":"two","verify_token":"t"}"#.into()));
        assert!(cache.refresh(&first).await.is_none(), "rate-limited");
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);

        tokio::time::advance(REFRESH_INTERVAL).await;
        let second = cache.refresh(&first).await.expect("rotated secret");
        assert_eq!(second.app_secret().unwrap(), b"two");
        assert_eq!(cache.get().await.unwrap().app_secret().unwrap(), b"two");
        // A caller still holding the old value gets the new one without another fetch.
        assert_eq!(cache.refresh(&first).await.unwrap(), second);
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_first_fetch_is_retried_after_a_backoff() {
        let source = FakeSource::holding("");
        source.set(Err(SecretError::Unavailable("down".into())));
        let cache = AppSecretCache::new(&source);
        assert_eq!(
            cache.get().await.unwrap_err(),
            SecretError::Unavailable("down".into())
        );
        assert_eq!(cache.get().await.unwrap_err(), SecretError::Backoff);
        source.set(Ok(r#"{"app_secret":"s"}"#.into()));
        tokio::time::advance(RETRY_INTERVAL).await;
        let secrets = cache.get().await.unwrap();
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
        assert_eq!(
            secrets.verify_token().unwrap_err(),
            SecretError::MissingKey("verify_token")
        );
    }

    #[test]
    fn empty_or_absent_keys_are_not_configured_and_never_printed() {
        let secrets: AppSecrets =
            serde_json::from_str(r#"{"app_secret":"","verify_token":"hunter2"}"#).unwrap();
        assert_eq!(
            secrets.app_secret().unwrap_err(),
            SecretError::MissingKey("app_secret")
        );
        assert!(!format!("{secrets:?}").contains("hunter2"));
    }
}
