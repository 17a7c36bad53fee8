//! The secrets, one per reader (DESIGN.md, Decisions, "Secrets"): each function can read
//! only the keys it needs, under a name prefix no other function's grant covers.
//!
//! | secret | keys | read by |
//! |---|---|---|
//! | `<stack>/app` (`APP_SECRET_ID`) | [`AppSecrets`]: `app_secret`, `verify_token` | webhook |
//! | `<stack>/ai` (`AI_SECRET_ID`) | [`AiSecrets`]: `anthropic_api_key` | worker |
//! | `<stack>/tenants/<pn>` (`TENANT_SECRET_PREFIX`) | [`TenantSecrets`]: `whatsapp_token`, `chatwoot_token` | worker |
//! | `<stack>/desk/<pn>` (`DESK_SECRET_PREFIX`) | [`DeskSecrets`]: `desk_token`, `chatwoot_webhook_secret` | desk |
//! | `<stack>/hooks/<pn>` (`HOOKS_SECRET_PREFIX`) | [`HookSecrets`]: each event subscription's signing secret by its id | hook delivery |
//!
//! A stack-wide secret is fetched once per container and cached ([`SecretCache`]). A
//! signature or token mismatch may mean the secret was rotated, so callers can ask for a
//! refresh, which is rate-limited: junk requests cannot drive Secrets Manager calls.
//!
//! A secret that is not a JSON object of strings is reported by its id and the kind of
//! problem only: serde's messages can quote parts of the input, that is, of the secret.

#[cfg(any(test, feature = "testing"))]
pub mod memory;
#[cfg(feature = "secrets-manager")]
pub mod secrets_manager;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
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

/// The webhook's secret, `<stack>/app`: Meta's app secret and the verify token.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct AppSecrets {
    #[serde(default)]
    pub app_secret: Secret,
    #[serde(default)]
    pub verify_token: Secret,
}

impl AppSecrets {
    /// The app secret, or an error when it is absent or empty: never skip validation.
    pub fn app_secret(&self) -> Result<&[u8], SecretError> {
        non_empty(&self.app_secret, "app_secret").map(str::as_bytes)
    }

    pub fn verify_token(&self) -> Result<&str, SecretError> {
        non_empty(&self.verify_token, "verify_token")
    }
}

/// The worker's stack-wide secret, `<stack>/ai`: the Anthropic key of the AI attendant.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct AiSecrets {
    #[serde(default)]
    pub anthropic_api_key: Secret,
}

impl AiSecrets {
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

/// What is wrong with a secret's text, never quoting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformation {
    /// Not JSON at all (or cut short).
    NotJson,
    /// JSON, but not an object, or a key of the wrong type.
    WrongShape,
    /// A binary secret, or one without a value.
    NoString,
}

impl fmt::Display for Malformation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotJson => "is not JSON",
            Self::WrongShape => "is not a JSON object of strings",
            Self::NoString => "has no string value",
        })
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SecretError {
    #[error("secret could not be read: {0}")]
    Unavailable(String),
    /// The secret does not exist (Secrets Manager's `ResourceNotFoundException`).
    #[error("secret {0} does not exist")]
    NotFound(String),
    #[error("secret {secret_id} {problem}")]
    Malformed {
        secret_id: String,
        problem: Malformation,
    },
    #[error("secret has no value for `{0}`")]
    MissingKey(&'static str),
    #[error("secret not fetched: the last attempt failed less than {RETRY_INTERVAL:?} ago")]
    Backoff,
}

/// Reads a secret's JSON text into `T`. The error names the secret and the kind of problem,
/// never the text: serde's own messages may quote it.
pub fn parse<T: DeserializeOwned>(secret_id: &str, text: &str) -> Result<T, SecretError> {
    serde_json::from_str(text).map_err(|error| SecretError::Malformed {
        secret_id: secret_id.to_owned(),
        problem: match error.classify() {
            serde_json::error::Category::Data => Malformation::WrongShape,
            _ => Malformation::NotJson,
        },
    })
}

/// Port: where a stack-wide secret's JSON text comes from.
pub trait SecretSource: Send + Sync {
    /// The secret's name or ARN, for errors.
    fn secret_id(&self) -> &str;
    fn fetch(&self) -> impl Future<Output = Result<String, SecretError>> + Send;
}

/// The worker's per-tenant secret, `<stack>/tenants/<phone_number_id>`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct TenantSecrets {
    #[serde(default)]
    pub whatsapp_token: Secret,
    #[serde(default)]
    pub chatwoot_token: Secret,
}

impl TenantSecrets {
    pub fn whatsapp_token(&self) -> Result<&str, SecretError> {
        non_empty(&self.whatsapp_token, "whatsapp_token")
    }

    pub fn chatwoot_token(&self) -> Result<&str, SecretError> {
        non_empty(&self.chatwoot_token, "chatwoot_token")
    }
}

/// The desk function's per-tenant secret, `<stack>/desk/<phone_number_id>`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct DeskSecrets {
    #[serde(default)]
    pub desk_token: Secret,
    /// The Chatwoot webhook's signing secret, when the tenant's Chatwoot signs webhooks:
    /// then `X-Chatwoot-Signature` is required too.
    #[serde(default)]
    pub chatwoot_webhook_secret: Secret,
}

impl DeskSecrets {
    pub fn desk_token(&self) -> Result<&str, SecretError> {
        non_empty(&self.desk_token, "desk_token")
    }

    pub fn chatwoot_webhook_secret(&self) -> Option<&str> {
        non_empty(&self.chatwoot_webhook_secret, "chatwoot_webhook_secret").ok()
    }
}

/// The hook delivery's per-tenant secret, `<stack>/hooks/<phone_number_id>`: a JSON object
/// `{"<subscription id>": "<signing secret>"}`, written by whoever creates the subscription.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct HookSecrets(pub std::collections::HashMap<String, Secret>);

impl HookSecrets {
    /// The subscription's signing secret; absent or empty is not configured.
    pub fn signing_secret(&self, subscription_id: &str) -> Option<&[u8]> {
        self.0
            .get(subscription_id)
            .map(Secret::expose)
            .filter(|secret| !secret.is_empty())
            .map(str::as_bytes)
    }
}

/// Port: one secret per tenant, `T` the keys its reader may see ([`TenantSecrets`] for the
/// worker, [`DeskSecrets`] for the desk).
pub trait PerTenantSecrets<T>: Send + Sync {
    fn tenant_secrets(
        &self,
        phone_number_id: &str,
    ) -> impl Future<Output = Result<T, SecretError>> + Send;
}

/// The worker's port: WhatsApp and Chatwoot tokens.
pub trait TenantTokens: PerTenantSecrets<TenantSecrets> {}
impl<P: PerTenantSecrets<TenantSecrets>> TenantTokens for P {}

/// The desk's port: the desk token and Chatwoot's webhook secret.
pub trait DeskTokens: PerTenantSecrets<DeskSecrets> {}
impl<P: PerTenantSecrets<DeskSecrets>> DeskTokens for P {}

struct State<T> {
    current: Option<Arc<T>>,
    last_fetch: Option<Instant>,
}

/// A stack-wide secret, read once per container.
pub struct SecretCache<T, S> {
    source: S,
    state: Mutex<State<T>>,
}

/// The webhook's cache of `<stack>/app`.
pub type AppSecretCache<S> = SecretCache<AppSecrets, S>;
/// The worker's cache of `<stack>/ai`.
pub type AiSecretCache<S> = SecretCache<AiSecrets, S>;

impl<T: DeserializeOwned + PartialEq, S: SecretSource> SecretCache<T, S> {
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
    pub async fn get(&self) -> Result<Arc<T>, SecretError> {
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
    pub async fn refresh(&self, stale: &Arc<T>) -> Option<Arc<T>> {
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
                tracing::warn!(%error, "secret refresh failed, keeping the cached one");
                None
            }
        }
    }

    async fn fetch(&self, state: &mut State<T>) -> Result<T, SecretError> {
        state.last_fetch = Some(Instant::now());
        let json = self.source.fetch().await?;
        parse(self.source.secret_id(), &json)
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
        fn secret_id(&self) -> &str {
            "stack/app"
        }
        async fn fetch(&self) -> Result<String, SecretError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.value.lock().unwrap().clone()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fetches_once_and_refreshes_at_most_once_a_minute() {
        let source = FakeSource::holding(r#"{"app_secret":"one","verify_token":"t"}"#);
        let cache: AppSecretCache<_> = SecretCache::new(&source);
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
        let cache: AppSecretCache<_> = SecretCache::new(&source);
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

    /// A recognizable value that must never appear in an error.
    const CANARY: &str = "sk-canary-7f3e9a";

    fn assert_quiet(error: &SecretError) {
        for text in [error.to_string(), format!("{error:?}")] {
            assert!(!text.contains(CANARY), "{text}");
            assert!(!text.contains("canary"), "{text}");
        }
    }

    #[test]
    fn a_malformed_secret_is_named_and_classified_never_quoted() {
        let cases = [
            (format!("{CANARY} not json"), Malformation::NotJson),
            (
                format!(r#"{{"app_secret": "{CANARY}"#),
                Malformation::NotJson,
            ),
            (format!(r#"[["{CANARY}"]]"#), Malformation::WrongShape),
            (format!(r#""{CANARY}""#), Malformation::WrongShape),
            (
                format!(r#"{{"app_secret": ["{CANARY}"], "verify_token": 1}}"#),
                Malformation::WrongShape,
            ),
            (
                format!(r#"{{"verify_token": "x", "app_secret": {{"{CANARY}": 1}}}}"#),
                Malformation::WrongShape,
            ),
        ];
        for (text, problem) in cases {
            let error = parse::<AppSecrets>("stack/app", &text).unwrap_err();
            assert_eq!(
                error,
                SecretError::Malformed {
                    secret_id: "stack/app".into(),
                    problem
                },
                "{text}"
            );
            assert_quiet(&error);
            assert!(
                error.to_string().starts_with("secret stack/app "),
                "{error}"
            );
        }
        let error = parse::<DeskSecrets>("stack/desk/1", &format!(r#"{{"desk_token": {CANARY}}}"#))
            .unwrap_err();
        assert_quiet(&error);
    }

    #[tokio::test(start_paused = true)]
    async fn the_cache_reports_a_malformed_secret_without_its_value() {
        let source = FakeSource::holding(&format!(r#"{{"app_secret": 1, "x": "{CANARY}"#));
        let cache: AppSecretCache<_> = SecretCache::new(&source);
        let error = cache.get().await.unwrap_err();
        assert_quiet(&error);
        assert!(matches!(error, SecretError::Malformed { .. }), "{error}");
    }

    #[test]
    fn hook_secrets_are_found_by_subscription_and_never_printed() {
        let secrets: HookSecrets = parse(
            "stack/hooks/1",
            &format!(r#"{{"hk_a": "{CANARY}", "hk_b": ""}}"#),
        )
        .unwrap();
        assert_eq!(secrets.signing_secret("hk_a"), Some(CANARY.as_bytes()));
        assert_eq!(secrets.signing_secret("hk_b"), None);
        assert_eq!(secrets.signing_secret("hk_c"), None);
        assert!(!format!("{secrets:?}").contains(CANARY));
        let error = parse::<HookSecrets>("stack/hooks/1", &format!(r#"{{"hk_a": ["{CANARY}"]}}"#))
            .unwrap_err();
        assert_quiet(&error);
    }

    #[test]
    fn a_secret_of_the_earlier_layout_still_reads_for_every_reader() {
        let everything = r#"{"app_secret":"a","verify_token":"v","anthropic_api_key":"k",
            "whatsapp_token":"w","chatwoot_token":"c","desk_token":"d","chatwoot_webhook_secret":"h"}"#;
        let app: AppSecrets = parse("s", everything).unwrap();
        let ai: AiSecrets = parse("s", everything).unwrap();
        let tenant: TenantSecrets = parse("s", everything).unwrap();
        let desk: DeskSecrets = parse("s", everything).unwrap();
        assert_eq!(
            (app.app_secret().unwrap(), app.verify_token().unwrap()),
            (&b"a"[..], "v")
        );
        assert_eq!(ai.anthropic_api_key().unwrap(), "k");
        assert_eq!(
            (
                tenant.whatsapp_token().unwrap(),
                tenant.chatwoot_token().unwrap()
            ),
            ("w", "c")
        );
        assert_eq!(
            (desk.desk_token().unwrap(), desk.chatwoot_webhook_secret()),
            ("d", Some("h"))
        );
    }
}
