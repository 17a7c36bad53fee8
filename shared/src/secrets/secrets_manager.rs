//! Secrets Manager adapter of the [`SecretSource`] port.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

use crate::secrets::{SecretError, SecretSource, TenantSecrets, TenantTokens};

#[derive(Clone)]
pub struct SecretsManagerSource {
    client: Client,
    secret_id: String,
}

impl SecretsManagerSource {
    pub fn new(client: Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
        }
    }
}

impl SecretSource for SecretsManagerSource {
    async fn fetch(&self) -> Result<String, SecretError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| SecretError::Unavailable(DisplayErrorContext(e).to_string()))?;
        output
            .secret_string
            .ok_or_else(|| SecretError::Malformed("the secret has no string value".into()))
    }
}

/// Each tenant's secret, named `<prefix><phone_number_id>` (the template sets the prefix to
/// `<stack>/tenants/`, and IAM grants reading by that prefix).
#[derive(Clone)]
pub struct TenantSecretsManager {
    client: Client,
    prefix: String,
}

impl TenantSecretsManager {
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
        }
    }
}

impl TenantTokens for TenantSecretsManager {
    async fn tenant_secrets(&self, phone_number_id: &str) -> Result<TenantSecrets, SecretError> {
        let source = SecretsManagerSource::new(
            self.client.clone(),
            format!("{}{phone_number_id}", self.prefix),
        );
        serde_json::from_str(&source.fetch().await?)
            .map_err(|e| SecretError::Malformed(e.to_string()))
    }
}
