//! Lambda entry point: the clients once per container; every scheduled invocation starts
//! the campaigns due at the time it was scheduled ([`shared::campaign::dispatch`]).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};
use shared::campaign::dispatch::dispatch;
use shared::campaign::dynamodb::DynamoCampaigns;
use shared::campaign::sqs::SqsCampaignQueue;
use shared::store::dynamodb::DynamoStore;
use shared::store::keys::TABLE_NAME;
use shared::support::config::{ConfigError, required};
use shared::support::lambda::fail_every_invocation;

fn settings() -> Result<(String, String), ConfigError> {
    Ok((required(TABLE_NAME)?, required("CAMPAIGN_QUEUE_URL")?))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::support::telemetry::init();
    let (table, queue_url) = match settings() {
        Ok(settings) => settings,
        Err(error) => return fail_every_invocation("campaign-dispatch", error).await,
    };
    let aws = aws_config::load_from_env().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let campaigns = DynamoCampaigns::new(dynamodb.clone(), table.clone());
    let tenants = DynamoStore::new(dynamodb, table);
    let queue = SqsCampaignQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url);
    let (campaigns, tenants, queue) = (&campaigns, &tenants, &queue);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let now = shared::queue::schedule::scheduled_time(&event.payload);
        let report = dispatch(campaigns, tenants, queue, now).await?;
        Ok::<Value, Error>(json!({
            "started": report.started,
            "batches": report.batches,
            "waiting_for_hours": report.waiting_for_hours,
            "dropped": report.dropped,
        }))
    }))
    .await
}
