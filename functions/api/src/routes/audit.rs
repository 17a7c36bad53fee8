//! The audit log: the provider's and each tenant's.

use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::platform::access::{Need, Owner};
use shared::platform::audit;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Problems;
use crate::AppState;
use crate::auth::Caller;
use crate::extract::Query;
use crate::page::{PageQuery, next_cursor};
use crate::problem::ApiResult;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(platform_audit))
        .routes(routes!(tenant_audit))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// `key:<id>` or `person:<sub>`.
    pub actor: String,
    pub action: String,
    pub target: String,
    /// Details; customers appear only as hashes.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}

async fn list(app: &AppState, owner: Owner, query: PageQuery) -> ApiResult<axum::Json<AuditPage>> {
    let binding = format!("audit|{}", owner.key());
    let page = audit::list(
        &app.db,
        &owner,
        query.limit()?,
        query.start(app, &binding)?.as_ref(),
    )
    .await?;
    Ok(axum::Json(AuditPage {
        next_cursor: next_cursor(app, &binding, &page),
        items: page
            .items
            .into_iter()
            .map(|entry| AuditEntry {
                at: entry.at,
                actor: entry.actor,
                action: entry.action,
                target: entry.target,
                detail: entry.detail,
            })
            .collect(),
    }))
}

/// The provider's changes (tenants, platform keys and admins), newest first.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(PageQuery), responses((status = 200, description = "OK", body = AuditPage), Problems))]
async fn platform_audit(
    State(app): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<axum::Json<AuditPage>> {
    caller.require_platform()?;
    let query = query?;
    list(&app, Owner::Platform, query).await
}

/// The tenant's changes (configuration, keys, members, data requests, approvals), newest first.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/audit", tag = "audit",
    params(("tenant" = String, Path, description = "The tenant's number id"), PageQuery),
    responses((status = 200, description = "OK", body = AuditPage), Problems))]
async fn tenant_audit(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult<axum::Json<AuditPage>> {
    let tenant = app.tenant(&caller, &tenant, Need::Admin).await?;
    let query = query?;
    list(&app, Owner::Tenant(tenant), query).await
}
