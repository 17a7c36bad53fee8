//! In-memory twins of the secrets: a stack-wide secret as a fixed JSON text, and the same
//! tenant secrets for every number.

use super::{PerTenantSecrets, Secret, SecretError, SecretSource, TenantSecrets};

/// A stack-wide secret (`{"anthropic_api_key"}`, ...) as given.
#[derive(Clone)]
pub struct StaticSecret(pub String);

impl SecretSource for StaticSecret {
    fn secret_id(&self) -> &str {
        "static"
    }

    async fn fetch(&self) -> Result<String, SecretError> {
        Ok(self.0.clone())
    }
}

/// Every tenant's tokens.
#[derive(Clone, Default)]
pub struct StaticTokens(pub TenantSecrets);

impl StaticTokens {
    /// WhatsApp and Chatwoot tokens for every number.
    pub fn local() -> Self {
        Self(TenantSecrets {
            whatsapp_token: Secret::new("local-token"),
            chatwoot_token: Secret::new("local-chatwoot-token"),
        })
    }
}

impl PerTenantSecrets<TenantSecrets> for StaticTokens {
    async fn tenant_secrets(&self, _phone_number_id: &str) -> Result<TenantSecrets, SecretError> {
        Ok(self.0.clone())
    }
}
