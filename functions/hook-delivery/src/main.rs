//! Lambda entry point: the clients once per container (the HTTP client with its checked
//! resolver among them); every SQS batch goes to [`hook_delivery::HookDelivery`].

use std::sync::Arc;
use std::time::Duration;

use hook_delivery::store::DynamoHookStore;
use hook_delivery::target::{HttpPoster, test_hooks};
use hook_delivery::{Adapters, HookDelivery, Services, Settings};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::desk::sns::SnsTopic;
use shared::hooks::sqs::SqsHookQueue;
use shared::secrets::secrets_manager::TenantSecretsManager;
use shared::support::deadline::Deadline;
use shared::support::lambda::fail_every_invocation;

/// The function's `Timeout` in template.yaml.
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(120);

struct Aws;

impl Adapters for Aws {
    type Store = DynamoHookStore;
    type Queue = SqsHookQueue;
    type Alerts = SnsTopic;
    type Secrets = TenantSecretsManager;
    type Poster = HttpPoster;
}

fn configure() -> Result<(Settings, HttpPoster), String> {
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    let test = test_hooks().map_err(|e| e.to_string())?;
    let poster = HttpPoster::new(test).map_err(|e| format!("the HTTP client: {e}"))?;
    Ok((settings, poster))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::support::telemetry::init();
    let (settings, poster) = match configure() {
        Ok(configured) => configured,
        Err(error) => return fail_every_invocation("hook-delivery", error).await,
    };
    let aws = aws_config::load_from_env().await;
    let services = Services::<Aws> {
        store: DynamoHookStore::new(aws_sdk_dynamodb::Client::new(&aws), settings.table),
        queue: SqsHookQueue::new(aws_sdk_sqs::Client::new(&aws), settings.queue_url),
        alerts: SnsTopic::new(aws_sdk_sns::Client::new(&aws), settings.alert_topic_arn),
        secrets: TenantSecretsManager::new(
            aws_sdk_secretsmanager::Client::new(&aws),
            settings.secret_prefix,
        ),
        poster,
    };
    let delivery = Arc::new(HookDelivery::new(services));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        let delivery = delivery.clone();
        // A local emulator may send no usable deadline: assume the template's timeout.
        let deadline = Deadline::from_epoch_millis(event.context.deadline)
            .unwrap_or_else(|| Deadline::after(FUNCTION_TIMEOUT));
        // Boxed: the handler's future is deep (a stream of deliveries), too deep to lay out
        // inline in the runtime's.
        async move { Ok::<_, Error>(Box::pin(delivery.handle(event.payload, deadline)).await) }
    }))
    .await
}
