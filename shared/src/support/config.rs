//! Environment configuration shared by every function (DESIGN.md "Configuration contract").

use thiserror::Error;

use crate::store::keys::TABLE_NAME;

/// The webhook's secret, `<stack>/app`.
pub const APP_SECRET_ID: &str = "APP_SECRET_ID";
/// The worker's Anthropic key, `<stack>/ai`.
pub const AI_SECRET_ID: &str = "AI_SECRET_ID";
pub const INBOUND_QUEUE_URL: &str = "INBOUND_QUEUE_URL";
/// The worker's secret of each tenant is `<prefix><phone_number_id>` (`<stack>/tenants/`).
pub const TENANT_SECRET_PREFIX: &str = "TENANT_SECRET_PREFIX";
/// The desk's secret of each tenant is `<prefix><phone_number_id>` (`<stack>/desk/`).
pub const DESK_SECRET_PREFIX: &str = "DESK_SECRET_PREFIX";
/// The hook delivery's secret of each tenant is `<prefix><phone_number_id>` (`<stack>/hooks/`).
pub const HOOKS_SECRET_PREFIX: &str = "HOOKS_SECRET_PREFIX";
/// The hooks queue (standard): the producers' batches and the delivery's retries.
pub const HOOKS_QUEUE_URL: &str = "HOOKS_QUEUE_URL";

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {0} is not set (template.yaml sets it for every function)")]
    Missing(&'static str),
    #[error("environment variable {name} is not valid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// The scheduled functions' configuration: the table they read, the queue they feed.
pub struct ScheduleSettings {
    pub table: String,
    pub queue_url: String,
}

impl ScheduleSettings {
    pub fn from_env() -> Result<ScheduleSettings, ConfigError> {
        Ok(ScheduleSettings {
            table: required(TABLE_NAME)?,
            queue_url: required(INBOUND_QUEUE_URL)?,
        })
    }
}

/// A variable the function cannot work without; empty counts as missing.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(ConfigError::Missing(name)),
    }
}
