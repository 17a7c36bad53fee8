//! Lambda entry point: reads configuration and builds the AWS clients once per container,
//! then hands every request to [`desk::DeskWebhook`].

use std::sync::Arc;

use desk::DeskWebhook;
use lambda_http::{Body, Error, Request, Response, service_fn};
use shared::queue::sqs::SqsQueue;
use shared::secrets::secrets_manager::TenantSecretsManager;
use shared::support::config::{self, INBOUND_QUEUE_URL, TENANT_SECRET_PREFIX};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::support::telemetry::init();
    let settings = config::required(INBOUND_QUEUE_URL)
        .and_then(|queue| Ok((queue, config::required(TENANT_SECRET_PREFIX)?)));
    let (queue_url, secret_prefix) = match settings {
        Ok(settings) => settings,
        Err(error) => {
            tracing::error!(%error, "desk is not configured");
            return lambda_http::run(service_fn(move |_: Request| {
                let error = error.clone();
                async move { Err::<Response<Body>, Error>(error.into()) }
            }))
            .await;
        }
    };
    let aws = aws_config::load_from_env().await;
    let desk = Arc::new(DeskWebhook::new(
        TenantSecretsManager::new(aws_sdk_secretsmanager::Client::new(&aws), secret_prefix),
        SqsQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url),
    ));
    lambda_http::run(service_fn(move |request: Request| {
        let desk = desk.clone();
        async move { Ok::<_, Error>(desk.handle(request).await) }
    }))
    .await
}
