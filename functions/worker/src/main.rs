//! Lambda entry point: builds the clients once per container and hands every SQS batch to
//! [`worker::Worker`].

use std::sync::Arc;

use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::support::deadline::Deadline;
use shared::support::lambda::fail_every_invocation;
use worker::{Settings, Worker, aws};

/// The worker's `Timeout` in template.yaml.
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::support::telemetry::init();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => return fail_every_invocation("worker", error).await,
    };
    let (ports, config) = aws::ports(settings).await;
    let worker = Arc::new(Worker::<aws::Aws>::new(ports, config, worker::hooks()));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        let worker = worker.clone();
        // A local emulator may send no usable deadline: assume the template's timeout.
        let deadline = Deadline::from_epoch_millis(event.context.deadline)
            .unwrap_or_else(|| Deadline::after(FUNCTION_TIMEOUT));
        async move { Ok::<_, Error>(worker.handle(event.payload, deadline).await) }
    }))
    .await
}
