//! The worker on AWS: DynamoDB, Secrets Manager, SNS, SQS (the hooks queue), the Cloud API,
//! Claude and Chatwoot.

use shared::ai::claude::ClaudeClient;
use shared::campaign::dynamodb::DynamoCampaigns;
use shared::desk::chatwoot::ChatwootClient;
use shared::desk::sns::SnsTopic;
use shared::hooks::sqs::SqsHookQueue;
use shared::secrets::AiSecretCache;
use shared::secrets::secrets_manager::{SecretsManagerSource, TenantSecretsManager};
use shared::store::dynamodb::DynamoStore;
use shared::whatsapp::graph::GraphClient;

use crate::{Adapters, Config, Ports, Settings};

pub struct Aws;

impl Adapters for Aws {
    type Store = DynamoStore;
    type Campaigns = DynamoCampaigns;
    type Sender = GraphClient;
    type Tokens = TenantSecretsManager;
    type Assistant = ClaudeClient;
    type Desk = ChatwootClient;
    type Alerts = SnsTopic;
    type AiSecret = SecretsManagerSource;
    type EventsOut = SqsHookQueue;
}

/// The clients, built once per container.
pub async fn ports(settings: Settings) -> (Ports<Aws>, Config) {
    let aws = aws_config::load_from_env().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let ports = Ports {
        campaigns: DynamoCampaigns::new(dynamodb.clone(), settings.table.clone()),
        store: DynamoStore::new(dynamodb, settings.table),
        sender: GraphClient::new(settings.graph_base_url, settings.graph_version),
        tokens: TenantSecretsManager::new(secrets.clone(), settings.tenant_secret_prefix),
        assistant: ClaudeClient::new(&settings.anthropic_base_url),
        desk: ChatwootClient::default(),
        alerts: settings
            .alert_topic_arn
            .map(|arn| SnsTopic::new(aws_sdk_sns::Client::new(&aws), arn)),
        ai_secrets: AiSecretCache::new(SecretsManagerSource::new(secrets, settings.ai_secret_id)),
        events_out: settings
            .hooks_queue_url
            .map(|url| SqsHookQueue::new(aws_sdk_sqs::Client::new(&aws), url)),
    };
    (ports, settings.config)
}
