//! The function's configuration, from the environment `template.yaml` sets.

use shared::support::config::{ConfigError, required};

#[derive(Debug, Clone)]
pub struct Settings {
    pub table: String,
    pub queue_url: String,
    pub campaign_bucket: String,
    /// `<stack>/hooks/`: a tenant's subscriptions' secrets are `<prefix><pn>`.
    pub hooks_secret_prefix: String,
    /// `<stack>/api`: `{"cursor_key": "<64 hex digits>"}`.
    pub secret_id: String,
    /// `https://cognito-idp.<region>.amazonaws.com/<pool id>`.
    pub issuer: String,
    pub client_id: String,
    /// Where the pool's keys are: the issuer's `/.well-known/jwks.json` unless set (the local
    /// stack sets it to moto's).
    pub jwks_url: String,
    pub user_pool_id: String,
    pub limits: Limits,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Calls per minute per key or person.
    pub calls_per_minute: u32,
    /// Failed authentications per minute per source address.
    pub failed_auth_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            calls_per_minute: 600,
            failed_auth_per_minute: 60,
        }
    }
}

fn number(name: &'static str, default: u32) -> Result<u32, ConfigError> {
    match std::env::var(name) {
        Ok(value) => value.parse().map_err(|_| ConfigError::Invalid {
            name,
            reason: "a whole number".into(),
        }),
        Err(_) => Ok(default),
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let issuer = required("COGNITO_ISSUER")?.trim_end_matches('/').to_owned();
        let user_pool_id = issuer.rsplit('/').next().unwrap_or_default().to_owned();
        let jwks_url = std::env::var("COGNITO_JWKS_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| format!("{issuer}/.well-known/jwks.json"));
        // Anyone can sign tokens for a key served over plain HTTP: only the local stack,
        // which points every AWS client at an emulator, may use one.
        if !jwks_url.starts_with("https://") && std::env::var_os("AWS_ENDPOINT_URL").is_none() {
            return Err(ConfigError::Invalid {
                name: "COGNITO_JWKS_URL",
                reason: "must be https".into(),
            });
        }
        let defaults = Limits::default();
        Ok(Self {
            table: required("TABLE_NAME")?,
            queue_url: required("INBOUND_QUEUE_URL")?,
            campaign_bucket: required("CAMPAIGN_BUCKET")?,
            hooks_secret_prefix: required("HOOKS_SECRET_PREFIX")?,
            secret_id: required("API_SECRET_ID")?,
            issuer,
            client_id: required("COGNITO_CLIENT_ID")?,
            jwks_url,
            user_pool_id,
            limits: Limits {
                calls_per_minute: number("API_CALLS_PER_MINUTE", defaults.calls_per_minute)?,
                failed_auth_per_minute: number(
                    "API_FAILED_AUTH_PER_MINUTE",
                    defaults.failed_auth_per_minute,
                )?,
            },
        })
    }
}

/// The cursor key from the API's secret: 32 bytes as 64 hex digits. Fails closed.
pub async fn cursor_key(
    secrets: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<Vec<u8>, String> {
    let secret = secrets
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|error| {
            format!(
                "the API secret {secret_id} cannot be read: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(error)
            )
        })?;
    let value: serde_json::Value = serde_json::from_str(secret.secret_string().unwrap_or(""))
        .map_err(|_| format!("the API secret {secret_id} is not a JSON object"))?;
    let key = value
        .get("cursor_key")
        .and_then(|key| key.as_str())
        .and_then(|key| hex::decode(key).ok())
        .filter(|key| key.len() == 32)
        .ok_or_else(|| format!("the API secret {secret_id} has no cursor_key of 64 hex digits"))?;
    Ok(key)
}
