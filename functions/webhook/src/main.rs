//! Lambda entry point: builds the AWS clients once per container, then hands every request
//! to [`webhook::Webhook`].

use std::sync::Arc;

use lambda_http::{Error, Request, service_fn};
use shared::queue::sqs::SqsQueue;
use shared::secrets::secrets_manager::SecretsManagerSource;
use shared::support::lambda::fail_every_invocation;
use webhook::{Settings, Webhook};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::support::telemetry::init();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => return fail_every_invocation("webhook", error).await,
    };
    let aws = aws_config::load_from_env().await;
    let webhook = Arc::new(Webhook::new(
        SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::new(&aws),
            settings.app_secret_id,
        ),
        SqsQueue::new(webhook::queue_client(&aws), settings.queue_url),
    ));
    webhook.warm().await;
    lambda_http::run(service_fn(move |request: Request| {
        let webhook = webhook.clone();
        async move { Ok::<_, Error>(webhook.handle(request).await) }
    }))
    .await
}
