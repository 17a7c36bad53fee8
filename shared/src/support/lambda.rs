//! A function started without what it needs (a variable, a client) still starts the
//! runtime, and fails every invocation with the reason: the error shows in each
//! invocation's result and in the function's error alarm, not only in one cold-start log.

use std::fmt::Display;

use lambda_runtime::{Error, LambdaEvent, service_fn};

pub async fn fail_every_invocation(function: &str, error: impl Display) -> Result<(), Error> {
    let message = format!("{function} is not configured: {error}");
    tracing::error!(%message, "misconfigured");
    lambda_runtime::run(service_fn(move |_: LambdaEvent<serde_json::Value>| {
        let message = message.clone();
        async move { Err::<(), Error>(message.into()) }
    }))
    .await
}
