//! The worker's configuration, read from the environment once per container.

use chrono::Duration;
use shared::store::keys::TABLE_NAME;
use shared::support::config::{self, AI_SECRET_ID, ConfigError, TENANT_SECRET_PREFIX};

/// How the conversation is run.
pub struct Config {
    /// Messages older than this when they arrive (a backlog replayed after an outage) are
    /// recorded but not answered.
    pub stale_after: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            stale_after: Duration::hours(1),
        }
    }
}

/// Everything `main.rs` needs to build the adapters.
pub struct Settings {
    pub table: String,
    pub tenant_secret_prefix: String,
    pub ai_secret_id: String,
    pub graph_base_url: String,
    pub graph_version: String,
    pub anthropic_base_url: String,
    /// The SLA alert topic of the template; without it alerts go to WhatsApp only.
    pub alert_topic_arn: Option<String>,
    /// The hooks queue of the template; without it no event goes out (logged and counted
    /// when a subscription wants one).
    pub hooks_queue_url: Option<String>,
    pub config: Config,
}

impl Settings {
    pub fn from_env() -> Result<Settings, ConfigError> {
        let optional = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut config = Config::default();
        match optional("STALE_AFTER_SECONDS").map(|v| v.parse::<i64>()) {
            Some(Ok(seconds)) if seconds > 0 => config.stale_after = Duration::seconds(seconds),
            Some(_) => {
                tracing::warn!("STALE_AFTER_SECONDS is not a positive number; using the default")
            }
            None => {}
        }
        Ok(Settings {
            table: config::required(TABLE_NAME)?,
            tenant_secret_prefix: config::required(TENANT_SECRET_PREFIX)?,
            ai_secret_id: config::required(AI_SECRET_ID)?,
            graph_base_url: optional("GRAPH_API_BASE_URL")
                .unwrap_or_else(|| shared::whatsapp::graph::DEFAULT_BASE_URL.into()),
            graph_version: optional("GRAPH_API_VERSION").unwrap_or_else(|| "v23.0".into()),
            anthropic_base_url: optional("ANTHROPIC_BASE_URL")
                .unwrap_or_else(|| shared::ai::claude::DEFAULT_BASE_URL.into()),
            alert_topic_arn: optional("SLA_ALERT_TOPIC_ARN"),
            hooks_queue_url: optional("HOOKS_QUEUE_URL"),
            config,
        })
    }
}
