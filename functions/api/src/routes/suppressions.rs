//! The tenant's suppression list, one customer at a time: record an opt-out made elsewhere
//! (a form, a call) or an opt-in, and read whether a customer is listed. The list keeps
//! only hashes; every change is audited. Tenant admins only (keys with `admin`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::platform::access::Need;
use shared::platform::suppressions;
use shared::store::Suppressed;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Problems;
use super::rights::customer_id;
use crate::AppState;
use crate::auth::Caller;
use crate::problem::{ApiResult, Problem};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(
        get_suppression,
        put_suppression,
        delete_suppression
    ))
}

/// A customer on the tenant's suppression list: no campaign reaches them.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuppressionView {
    pub since: DateTime<Utc>,
    /// How they opted out: `words` (in the conversation), `meta` (in WhatsApp), `api`.
    pub source: String,
}

impl From<Suppressed> for SuppressionView {
    fn from(entry: Suppressed) -> Self {
        Self {
            since: entry.since,
            source: entry.source.as_str().into(),
        }
    }
}

/// Whether the customer is on the list: 404 when not.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/suppressions/{customer}", tag = "suppressions",
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("customer" = String, Path, description = "The customer's WhatsApp id (the number in digits, or the business-scoped user id)", max_length = 128)),
    responses((status = 200, description = "On the list", body = SuppressionView), Problems))]
async fn get_suppression(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, customer)): Path<(String, String)>,
) -> ApiResult<axum::Json<SuppressionView>> {
    let tenant = app.tenant(&caller, &tenant, Need::Admin).await?;
    let customer = customer_id(&customer)?;
    match suppressions::get(&app.db, &tenant, customer).await? {
        Some(entry) => Ok(axum::Json(entry.into())),
        None => Err(Problem::not_found()),
    }
}

/// Puts the customer on the list (an opt-out made elsewhere). A customer already listed
/// stays as listed.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/suppressions/{customer}", tag = "suppressions",
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("customer" = String, Path, description = "The customer's WhatsApp id (the number in digits, or the business-scoped user id)", max_length = 128)),
    responses((status = 200, description = "On the list", body = SuppressionView), Problems))]
async fn put_suppression(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, customer)): Path<(String, String)>,
) -> ApiResult<axum::Json<SuppressionView>> {
    let tenant = app.tenant(&caller, &tenant, Need::Admin).await?;
    let customer = customer_id(&customer)?;
    let entry =
        suppressions::suppress(&app.db, &tenant, customer, &caller.id(), Utc::now()).await?;
    Ok(axum::Json(entry.into()))
}

/// Takes the customer off the list (an opt-in made elsewhere); 404 when not listed.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/suppressions/{customer}", tag = "suppressions",
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("customer" = String, Path, description = "The customer's WhatsApp id (the number in digits, or the business-scoped user id)", max_length = 128)),
    responses((status = 204, description = "Off the list"), Problems))]
async fn delete_suppression(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, customer)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let tenant = app.tenant(&caller, &tenant, Need::Admin).await?;
    let customer = customer_id(&customer)?;
    match suppressions::allow(&app.db, &tenant, customer, &caller.id(), Utc::now()).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(Problem::not_found()),
    }
}
