//! Lambda entry point: the clients once per container; every SQS batch goes to
//! [`campaign_sender::CampaignSender`].

use std::sync::Arc;
use std::time::Duration;

use campaign_sender::{Adapters, CampaignSender, Services};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::campaign::dynamodb::DynamoCampaigns;
use shared::campaign::sqs::SqsCampaignQueue;
use shared::desk::sns::SnsTopic;
use shared::secrets::secrets_manager::TenantSecretsManager;
use shared::store::dynamodb::DynamoStore;
use shared::store::keys::TABLE_NAME;
use shared::support::config::{ConfigError, TENANT_SECRET_PREFIX, required};
use shared::support::deadline::Deadline;
use shared::support::lambda::fail_every_invocation;
use shared::support::retry::RetryPolicy;
use shared::whatsapp::graph::{DEFAULT_BASE_URL, GraphClient};

/// The sender's `Timeout` in template.yaml.
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(120);

struct Aws;

impl Adapters for Aws {
    type Campaigns = DynamoCampaigns;
    type Tenants = DynamoStore;
    type Graph = GraphClient;
    type Queue = SqsCampaignQueue;
    type Alerts = SnsTopic;
    type Tokens = TenantSecretsManager;
}

struct Settings {
    table: String,
    queue_url: String,
    tenant_secret_prefix: String,
    alert_topic_arn: String,
    graph_base_url: String,
    graph_version: String,
}

fn settings() -> Result<Settings, ConfigError> {
    let optional = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    Ok(Settings {
        table: required(TABLE_NAME)?,
        queue_url: required("CAMPAIGN_QUEUE_URL")?,
        tenant_secret_prefix: required(TENANT_SECRET_PREFIX)?,
        alert_topic_arn: required("SLA_ALERT_TOPIC_ARN")?,
        graph_base_url: optional("GRAPH_API_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.into()),
        graph_version: optional("GRAPH_API_VERSION").unwrap_or_else(|| "v23.0".into()),
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::support::telemetry::init();
    let settings = match settings() {
        Ok(settings) => settings,
        Err(error) => return fail_every_invocation("campaign-sender", error).await,
    };
    let aws = aws_config::load_from_env().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    // One call per send: the batch decides what a throttle or a pair-rate refusal means,
    // with the pace every container shares.
    let graph =
        GraphClient::new(settings.graph_base_url, settings.graph_version).with_retry(RetryPolicy {
            attempts: 1,
            base_delay: Duration::ZERO,
        });
    let services = Services::<Aws> {
        campaigns: DynamoCampaigns::new(dynamodb.clone(), settings.table.clone()),
        tenants: DynamoStore::new(dynamodb, settings.table),
        graph,
        queue: SqsCampaignQueue::new(aws_sdk_sqs::Client::new(&aws), settings.queue_url),
        alerts: SnsTopic::new(aws_sdk_sns::Client::new(&aws), settings.alert_topic_arn),
        tokens: TenantSecretsManager::new(
            aws_sdk_secretsmanager::Client::new(&aws),
            settings.tenant_secret_prefix,
        ),
    };
    let sender = Arc::new(CampaignSender::new(services));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        let sender = sender.clone();
        // A local emulator may send no usable deadline: assume the template's timeout.
        let deadline = Deadline::from_epoch_millis(event.context.deadline)
            .unwrap_or_else(|| Deadline::after(FUNCTION_TIMEOUT));
        async move { Ok::<_, Error>(sender.handle(event.payload, deadline).await) }
    }))
    .await
}
