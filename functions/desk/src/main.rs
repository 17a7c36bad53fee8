//! Lambda entry point: builds the AWS clients once per container, then hands every request
//! to [`desk::DeskWebhook`].

use std::sync::Arc;

use desk::{DeskWebhook, Settings};
use lambda_http::{Error, Request, service_fn};
use shared::queue::sqs::SqsQueue;
use shared::secrets::secrets_manager::TenantSecretsManager;
use shared::support::lambda::fail_every_invocation;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::support::telemetry::init();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => return fail_every_invocation("desk", error).await,
    };
    let aws = aws_config::load_from_env().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let desk = Arc::new(DeskWebhook::new(
        TenantSecretsManager::new(secrets, settings.desk_secret_prefix),
        SqsQueue::new(aws_sdk_sqs::Client::new(&aws), settings.queue_url),
    ));
    lambda_http::run(service_fn(move |request: Request| {
        let desk = desk.clone();
        async move { Ok::<_, Error>(desk.handle(request).await) }
    }))
    .await
}
