//! The tenants' hook secrets (`<stack>/hooks/<pn>`), cached per container: read again after
//! a minute, or at once when a subscription's secret is missing (one created since), but
//! then at most once a minute per tenant, so a subscription without a secret cannot drive
//! Secrets Manager calls. A tenant without the secret has no signing secrets: its
//! deliveries fail closed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shared::secrets::{HookSecrets, PerTenantSecrets, SecretError};
use tokio::time::Instant;

/// A tenant's secrets are read again after this long.
pub const SECRETS_TTL: Duration = Duration::from_secs(60);
/// At most one read per tenant in this time for a missing subscription's secret.
pub const MISSING_REREAD: Duration = Duration::from_secs(60);

struct Cached {
    value: Arc<HookSecrets>,
    fetched_at: Instant,
    reread_for_missing_at: Option<Instant>,
}

#[derive(Default)]
pub struct HookSecretCache {
    entries: Mutex<HashMap<String, Cached>>,
}

async fn fetch<S: PerTenantSecrets<HookSecrets>>(
    source: &S,
    phone_number_id: &str,
) -> Result<Arc<HookSecrets>, SecretError> {
    match source.tenant_secrets(phone_number_id).await {
        Ok(secrets) => Ok(Arc::new(secrets)),
        Err(SecretError::NotFound(_)) => Ok(Arc::new(HookSecrets::default())),
        Err(error) => Err(error),
    }
}

impl HookSecretCache {
    /// The tenant's secrets, holding those of `wanted` when they exist.
    pub async fn get<S: PerTenantSecrets<HookSecrets>>(
        &self,
        source: &S,
        phone_number_id: &str,
        wanted: &[&str],
    ) -> Result<Arc<HookSecrets>, SecretError> {
        let now = Instant::now();
        let cached = self
            .lock()
            .get(phone_number_id)
            .map(|c| (c.value.clone(), c.fetched_at, c.reread_for_missing_at));
        let Some((value, fetched_at, reread_at)) = cached else {
            let value = fetch(source, phone_number_id).await?;
            self.store(phone_number_id, value.clone(), now, None);
            return Ok(value);
        };
        let fresh = now.duration_since(fetched_at) < SECRETS_TTL;
        let missing = wanted.iter().any(|id| value.signing_secret(id).is_none());
        let may_reread = reread_at.is_none_or(|at| now.duration_since(at) >= MISSING_REREAD);
        if fresh && (!missing || !may_reread) {
            return Ok(value);
        }
        let reread_at = if fresh { Some(now) } else { reread_at };
        match fetch(source, phone_number_id).await {
            Ok(value) => {
                self.store(phone_number_id, value.clone(), now, reread_at);
                Ok(value)
            }
            Err(error) if fresh => {
                tracing::warn!(%error, "hook secret re-read failed, keeping the cached one");
                self.store(phone_number_id, value.clone(), fetched_at, reread_at);
                Ok(value)
            }
            Err(error) => Err(error),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn store(
        &self,
        phone_number_id: &str,
        value: Arc<HookSecrets>,
        fetched_at: Instant,
        reread_for_missing_at: Option<Instant>,
    ) {
        self.lock().insert(
            phone_number_id.to_owned(),
            Cached {
                value,
                fetched_at,
                reread_for_missing_at,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryHookSecrets;

    #[tokio::test(start_paused = true)]
    async fn read_once_a_minute_and_again_at_most_once_a_minute_for_a_missing_id() {
        let source = MemoryHookSecrets::default();
        source.set("111", "hk_a", "secret-a");
        let cache = HookSecretCache::default();
        let secrets = cache.get(&source, "111", &["hk_a"]).await.unwrap();
        assert_eq!(secrets.signing_secret("hk_a"), Some(&b"secret-a"[..]));
        cache.get(&source, "111", &["hk_a"]).await.unwrap();
        assert_eq!(source.reads(), 1);

        // A subscription created since: read again at once...
        source.set("111", "hk_b", "secret-b");
        let secrets = cache.get(&source, "111", &["hk_b"]).await.unwrap();
        assert_eq!(secrets.signing_secret("hk_b"), Some(&b"secret-b"[..]));
        assert_eq!(source.reads(), 2);
        // ...but one with no secret at all does not drive a read per delivery.
        for _ in 0..5 {
            let secrets = cache.get(&source, "111", &["hk_c"]).await.unwrap();
            assert_eq!(secrets.signing_secret("hk_c"), None);
        }
        assert_eq!(source.reads(), 2);

        tokio::time::advance(MISSING_REREAD).await;
        cache.get(&source, "111", &["hk_c"]).await.unwrap();
        assert_eq!(source.reads(), 3);
        // Another tenant is its own entry; no secret at all reads as none (fail closed).
        let none = cache.get(&source, "222", &["hk_a"]).await.unwrap();
        assert_eq!(none.signing_secret("hk_a"), None);
        assert_eq!(source.reads(), 4);
    }
}
