//! Lambda entry point: reads configuration and builds the clients once per container, then
//! hands every SQS batch to [`worker::Worker`].

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::ai::claude::ClaudeClient;
use shared::desk::chatwoot::ChatwootClient;
use shared::desk::sns::SnsTopic;
use shared::secrets::AppSecretCache;
use shared::secrets::secrets_manager::{SecretsManagerSource, TenantSecretsManager};
use shared::store::dynamodb::DynamoStore;
use shared::store::keys::TABLE_NAME;
use shared::support::config::{self, APP_SECRET_ID, ConfigError, TENANT_SECRET_PREFIX};
use shared::whatsapp::graph::{DEFAULT_BASE_URL, GraphClient};
use worker::{Config, Hooks, Ports, Worker};

/// The worker's `Timeout` in template.yaml.
const FUNCTION_TIMEOUT_SECONDS: i64 = 60;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::support::telemetry::init();
    let settings = config::required(TABLE_NAME).and_then(|table| {
        Ok((
            table,
            config::required(TENANT_SECRET_PREFIX)?,
            config::required(APP_SECRET_ID)?,
        ))
    });
    let (table, secret_prefix, app_secret_id) = match settings {
        Ok(settings) => settings,
        Err(error) => return fail_every_invocation(error).await,
    };
    let graph_base =
        std::env::var("GRAPH_API_BASE_URL").unwrap_or_else(|_| DEFAULT_BASE_URL.into());
    let graph_version = std::env::var("GRAPH_API_VERSION").unwrap_or_else(|_| "v23.0".into());
    let anthropic_base = std::env::var("ANTHROPIC_BASE_URL")
        .unwrap_or_else(|_| shared::ai::claude::DEFAULT_BASE_URL.into());
    let aws = aws_config::load_from_env().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let ports = Ports {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table),
        sender: GraphClient::new(graph_base, graph_version),
        tokens: TenantSecretsManager::new(secrets.clone(), secret_prefix),
        assistant: ClaudeClient::new(&anthropic_base),
        desk: ChatwootClient::default(),
        // The SLA alert topic of the template; without it alerts go to WhatsApp only.
        alerts: std::env::var("SLA_ALERT_TOPIC_ARN")
            .ok()
            .filter(|arn| !arn.is_empty())
            .map(|arn| SnsTopic::new(aws_sdk_sns::Client::new(&aws), arn)),
        app_secrets: AppSecretCache::new(SecretsManagerSource::new(secrets, app_secret_id)),
    };
    let worker = Arc::new(Worker::new(ports, config(), hooks()));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let worker = worker.clone();
        async move {
            // A local emulator may send no usable deadline: assume the template's timeout.
            let deadline = DateTime::<Utc>::from_timestamp_millis(event.context.deadline as i64)
                .filter(|deadline| *deadline > Utc::now())
                .unwrap_or_else(|| {
                    tracing::debug!(deadline_ms = event.context.deadline, "no usable deadline");
                    Utc::now() + chrono::Duration::seconds(FUNCTION_TIMEOUT_SECONDS)
                });
            Ok::<SqsBatchResponse, Error>(worker.handle(event.payload, deadline).await)
        }
    }))
    .await
}

/// `STALE_AFTER_SECONDS`: how late a message may arrive and still be answered.
fn config() -> Config {
    let mut config = Config::default();
    match std::env::var("STALE_AFTER_SECONDS").map(|v| v.parse::<i64>()) {
        Ok(Ok(seconds)) if seconds > 0 => config.stale_after = chrono::Duration::seconds(seconds),
        Ok(_) => tracing::warn!("STALE_AFTER_SECONDS is not a positive number; using the default"),
        Err(_) => {}
    }
    config
}

async fn fail_every_invocation(error: ConfigError) -> Result<(), Error> {
    tracing::error!(%error, "worker is not configured");
    lambda_runtime::run(service_fn(move |_: LambdaEvent<serde_json::Value>| {
        let error = error.clone();
        async move { Err::<(), Error>(error.into()) }
    }))
    .await
}

#[cfg(feature = "test-hooks")]
fn hooks() -> Hooks {
    let clock_offset = std::env::var("TEST_CLOCK")
        .ok()
        .and_then(|at| at.parse::<DateTime<Utc>>().ok())
        .map(|at| at - Utc::now())
        .unwrap_or_default();
    let crash_after_effects = std::env::var("TEST_CRASH_AFTER_EFFECTS")
        .ok()
        .and_then(|n| n.parse().ok());
    Hooks {
        clock_offset,
        crash_after_effects,
    }
}

/// A test that asks for hooks from a build without them must fail loudly, not pass by luck.
#[cfg(not(feature = "test-hooks"))]
fn hooks() -> Hooks {
    for variable in ["TEST_CLOCK", "TEST_CRASH_AFTER_EFFECTS"] {
        if std::env::var_os(variable).is_some() {
            eprintln!(
                "{variable} is set but this build has no test hooks: build with --features worker/test-hooks"
            );
            std::process::exit(2);
        }
    }
    Hooks::default()
}
