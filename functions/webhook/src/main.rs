//! Lambda entry point: reads configuration and builds the AWS clients once per container,
//! then hands every request to [`webhook::Webhook`].

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use lambda_http::{Body, Error, Request, Response, service_fn};
use shared::queue::sqs::SqsQueue;
use shared::secrets::secrets_manager::SecretsManagerSource;
use shared::support::config::{self, APP_SECRET_ID, INBOUND_QUEUE_URL};
use webhook::Webhook;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::support::telemetry::init();
    let (secret_id, queue_url) = match config::required(APP_SECRET_ID)
        .and_then(|s| Ok((s, config::required(INBOUND_QUEUE_URL)?)))
    {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(%error, "webhook is not configured");
            return lambda_http::run(service_fn(move |_: Request| {
                let error = error.clone();
                async move { Err::<Response<Body>, Error>(error.into()) }
            }))
            .await;
        }
    };
    let aws = aws_config::load_from_env().await;
    // The webhook retries what SQS did not accept itself (shared::queue::enqueue_all), with
    // jitter and a bounded total, so the SDK does not retry on top of it.
    let sqs_config = aws_sdk_sqs::config::Builder::from(&aws)
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(5))
                .build(),
        )
        .build();
    let webhook = Arc::new(Webhook::new(
        SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&aws), secret_id),
        SqsQueue::new(aws_sdk_sqs::Client::from_conf(sqs_config), queue_url),
    ));
    webhook.warm().await;
    lambda_http::run(service_fn(move |request: Request| {
        let webhook = webhook.clone();
        async move { Ok::<_, Error>(webhook.handle(request).await) }
    }))
    .await
}
