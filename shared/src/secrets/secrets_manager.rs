//! Secrets Manager adapters of the [`SecretSource`] and [`PerTenantSecrets`] ports.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use serde::de::DeserializeOwned;

use crate::secrets::{Malformation, PerTenantSecrets, SecretError, SecretSource, parse};

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
    fn secret_id(&self) -> &str {
        &self.secret_id
    }

    async fn fetch(&self) -> Result<String, SecretError> {
        let output = match self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
        {
            Ok(output) => output,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Err(SecretError::NotFound(self.secret_id.clone()));
            }
            Err(error) => {
                return Err(SecretError::Unavailable(
                    DisplayErrorContext(error).to_string(),
                ));
            }
        };
        output.secret_string.ok_or_else(|| SecretError::Malformed {
            secret_id: self.secret_id.clone(),
            problem: Malformation::NoString,
        })
    }
}

/// One secret per tenant, named `<prefix><phone_number_id>`: the template sets the prefix
/// (`<stack>/tenants/` for the worker, `<stack>/desk/` for the desk) and IAM grants reading
/// by that prefix only.
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

impl<T: DeserializeOwned + Send> PerTenantSecrets<T> for TenantSecretsManager {
    async fn tenant_secrets(&self, phone_number_id: &str) -> Result<T, SecretError> {
        let source = SecretsManagerSource::new(
            self.client.clone(),
            format!("{}{phone_number_id}", self.prefix),
        );
        parse(source.secret_id(), &source.fetch().await?)
    }
}
