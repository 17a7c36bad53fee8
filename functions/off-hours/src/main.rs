//! Lambda entry point: the clients once per container; every scheduled invocation looks
//! for follow-ups due at the time it was scheduled ([`shared::queue::schedule::scheduled_time`]).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};
use shared::queue::sqs::SqsQueue;
use shared::store::dynamodb::DynamoStore;
use shared::store::keys::TABLE_NAME;
use shared::support::config::{self, INBOUND_QUEUE_URL};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::support::telemetry::init();
    let settings = config::required(TABLE_NAME)
        .and_then(|table| Ok((table, config::required(INBOUND_QUEUE_URL)?)));
    let (table, queue_url) = match settings {
        Ok(settings) => settings,
        Err(error) => {
            tracing::error!(%error, "off-hours is not configured");
            return lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| {
                let error = error.clone();
                async move { Err::<Value, Error>(error.into()) }
            }))
            .await;
        }
    };
    let aws = aws_config::load_from_env().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url);
    let (store, queue) = (&store, &queue);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let now = shared::queue::schedule::scheduled_time(&event.payload);
        let report = off_hours::run(store, queue, now).await?;
        Ok::<Value, Error>(json!({
            "tenants": report.tenants,
            "open": report.open,
            "follow_ups": report.follow_ups,
            "queries": report.queries,
        }))
    }))
    .await
}
