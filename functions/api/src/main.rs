//! Lambda entry point: builds the clients and reads the API's secret once per container,
//! then serves every request with [`api::router`].

use std::sync::Arc;

use api::auth::Verifier;
use api::cursor::Cursors;
use api::{App, Settings};
use lambda_http::Error;
use shared::platform::Db;
use shared::platform::hooks::HookSecrets;
use shared::platform::members::Directory;
use shared::support::lambda::fail_every_invocation;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::support::telemetry::init();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => return fail_every_invocation("api", error).await,
    };
    let aws = aws_config::load_from_env().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let cursors = match api::config::cursor_key(&secrets, &settings.secret_id).await {
        Ok(key) => Cursors::new(&key).map_err(|reason| reason.to_string()),
        Err(error) => Err(error),
    };
    let cursors = match cursors {
        Ok(cursors) => cursors,
        Err(error) => return fail_every_invocation("api", error).await,
    };
    let app = Arc::new(App {
        db: Db::new(aws_sdk_dynamodb::Client::new(&aws), settings.table),
        sqs: aws_sdk_sqs::Client::new(&aws),
        queue_url: settings.queue_url,
        s3: s3_client(&aws),
        campaign_bucket: settings.campaign_bucket,
        verifier: Verifier::new(settings.issuer, settings.client_id, settings.jwks_url),
        cursors,
        directory: Directory {
            client: aws_sdk_cognitoidentityprovider::Client::new(&aws),
            user_pool_id: settings.user_pool_id,
        },
        hook_secrets: HookSecrets::new(secrets, settings.hooks_secret_prefix),
        limits: settings.limits,
    });
    lambda_http::run(api::router(app)).await
}

/// Against an emulator (`AWS_ENDPOINT_URL`) buckets are addressed by path: presigned URLs
/// must reach it without a bucket subdomain.
fn s3_client(aws: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(aws)
        .force_path_style(std::env::var_os("AWS_ENDPOINT_URL").is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}
