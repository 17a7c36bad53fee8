//! The platform API under `/v1`: the provider's routes (tenants, platform keys and admins)
//! and each tenant's (conversations, queue, sending, reports, data rights, keys, members,
//! audit, event subscriptions). The OpenAPI 3.1 document is generated from the handlers themselves
//! ([`openapi`]), committed as `docs/openapi.json` and served at `/v1/openapi.json`.
//!
//! `main.rs` builds the clients once per container and hands [`router`] to `lambda_http`;
//! tests call the same router in process.

pub mod auth;
pub mod config;
pub mod cursor;
pub mod extract;
pub mod page;
pub mod problem;
pub mod routes;

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use chrono::{DateTime, Utc};
use shared::platform::Db;
use shared::platform::access::Need;
use shared::platform::access::Owner;
use shared::platform::audit;
use shared::platform::hooks::HookSecrets;
use shared::platform::members::Directory;
use shared::store::keys;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

pub use config::{Limits, Settings};

use crate::auth::{Caller, Verifier};
use crate::cursor::Cursors;
use crate::problem::Problem;

/// Everything a request needs, built once per container.
pub struct App {
    pub db: Db,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    /// Where campaign audiences are uploaded (`CAMPAIGN_BUCKET`).
    pub s3: aws_sdk_s3::Client,
    pub campaign_bucket: String,
    pub verifier: Verifier,
    pub cursors: Cursors,
    pub directory: Directory,
    /// The tenants' hooks secrets (`HOOKS_SECRET_PREFIX`): the subscriptions' signing keys.
    pub hook_secrets: HookSecrets,
    pub limits: Limits,
}

pub type AppState = Arc<App>;

impl App {
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    /// The tenant a route names, once the caller may `need` it there and it exists: another
    /// tenant's and a missing one get the same 404.
    pub async fn tenant(
        &self,
        caller: &Caller,
        tenant: &str,
        need: Need,
    ) -> Result<String, Problem> {
        let tenant = routes::tenant_id(tenant)?;
        caller.require(tenant, need)?;
        let found = self
            .db
            .client
            .get_item()
            .table_name(&self.db.table)
            .key(keys::PK, AttributeValue::S(keys::tenant(tenant)))
            .key(keys::SK, AttributeValue::S(keys::CONFIG.to_owned()))
            .projection_expression("pk")
            .send()
            .await
            .map_err(shared::platform::PlatformError::database)?;
        match found.item {
            Some(_) => Ok(tenant.to_owned()),
            None => Err(Problem::not_found()),
        }
    }

    /// Records a change in the owner's audit log. The change is done already: a failed
    /// record is logged as an error for the alarm, and the call still succeeds.
    pub async fn audit(
        &self,
        owner: &Owner,
        caller: &Caller,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) {
        let entry = audit::Entry {
            at: self.now(),
            actor: caller.id(),
            action: action.to_owned(),
            target: target.to_owned(),
            detail,
        };
        if let Err(error) = audit::record(&self.db, owner, &entry).await {
            tracing::error!(action, error = %error, "could not record an audit entry");
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Service desk platform API",
        version = "1",
        description = "The provider's and each tenant's API. Authenticate with `Authorization: Bearer <API key or Cognito access token>`. Errors are `application/problem+json` (RFC 9457). Lists are paged: follow `next_cursor` until it is null (a page may be short and still have a next one)."
    ),
    components(schemas(problem::Problem, problem::FieldError)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key (`sdk_...`) or a Cognito access token"))
                    .build(),
            ),
        );
    }
}

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(routes::all())
}

/// The OpenAPI document the handlers make, as served.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

/// The document committed in the repo and served at `/v1/openapi.json`; a test keeps it
/// equal to [`openapi`].
pub const OPENAPI_JSON: &str = include_str!("../../../docs/openapi.json");

pub fn router(app: AppState) -> Router {
    let (router, _) = routes().split_for_parts();
    router
        .fallback(|| async { Problem::not_found() })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() })
        .layer(DefaultBodyLimit::max(extract::MAX_BODY))
        .with_state(app)
}
