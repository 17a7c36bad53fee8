//! Lambda entry point: the clients once per container; every scheduled invocation looks
//! for follow-ups due at the time it was scheduled ([`shared::queue::schedule::scheduled_time`]).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};
use shared::queue::sqs::SqsQueue;
use shared::store::dynamodb::DynamoStore;
use shared::support::config::ScheduleSettings;
use shared::support::lambda::fail_every_invocation;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::support::telemetry::init();
    let settings = match ScheduleSettings::from_env() {
        Ok(settings) => settings,
        Err(error) => return fail_every_invocation("off-hours", error).await,
    };
    let aws = aws_config::load_from_env().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), settings.table);
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&aws), settings.queue_url);
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
