//! API keys: the provider's (`/v1/keys`) and each tenant's (`/v1/tenants/{tenant}/keys`).
//! The whole key is in the creation answer only; lists show its id.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::platform::access::{Owner, Principal, Scope};
use shared::platform::apikeys::{self, ApiKey};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{BodyProblems, Problems, ScopeName};
use crate::AppState;
use crate::auth::Caller;
use crate::extract::{Json, Query};
use crate::page::{PageQuery, next_cursor};
use crate::problem::{ApiResult, Problem};
use shared::platform::access::Need;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_platform_keys, create_platform_key))
        .routes(routes!(revoke_platform_key))
        .routes(routes!(list_tenant_keys, create_tenant_key))
        .routes(routes!(revoke_tenant_key))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// What the key is for (shown in lists), 1 to 80 characters.
    #[schema(min_length = 1, max_length = 80)]
    pub name: String,
    #[schema(min_items = 1)]
    pub scopes: Vec<ScopeName>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    /// Public: the `<id>` in `sdk_<p|t>_<id>_...`.
    pub id: String,
    pub name: String,
    pub scopes: Vec<ScopeName>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for KeyView {
    fn from(key: ApiKey) -> Self {
        Self {
            id: key.id,
            name: key.name,
            scopes: key.scopes.into_iter().map(ScopeName::from).collect(),
            created_by: key.created_by,
            created_at: key.created_at,
            revoked_at: key.revoked_at,
            last_used_at: key.last_used_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    /// The whole key: shown this once, stored only as a hash.
    pub key: String,
    #[serde(flatten)]
    pub view: KeyView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyPage {
    pub items: Vec<KeyView>,
    pub next_cursor: Option<String>,
}

/// A key may only hand out what it holds (`admin` holds `read`, `send` and `hooks:manage`);
/// people grant by role, which the route already checked.
fn may_grant(caller: &Caller, scopes: &[Scope]) -> Result<(), Problem> {
    if let Principal::Key { scopes: held, .. } = &caller.principal {
        let holds = |scope: &Scope| {
            held.contains(scope)
                || (matches!(scope, Scope::Read | Scope::Send | Scope::HooksManage)
                    && held.contains(&Scope::Admin))
        };
        if let Some(position) = scopes.iter().position(|scope| !holds(scope)) {
            return Err(Problem::invalid(
                format!("/scopes/{position}"),
                "a key cannot grant a scope it does not hold",
            ));
        }
    }
    Ok(())
}

async fn list(app: &AppState, owner: Owner, query: PageQuery) -> ApiResult<axum::Json<KeyPage>> {
    let binding = format!("keys|{}", owner.key());
    let page = apikeys::list(
        &app.db,
        &owner,
        query.limit()?,
        query.start(app, &binding)?.as_ref(),
    )
    .await?;
    Ok(axum::Json(KeyPage {
        next_cursor: next_cursor(app, &binding, &page),
        items: page.items.into_iter().map(KeyView::from).collect(),
    }))
}

async fn create(
    app: &AppState,
    caller: &Caller,
    owner: Owner,
    body: NewKey,
) -> ApiResult<(StatusCode, axum::Json<CreatedKey>)> {
    let scopes: Vec<Scope> = body.scopes.iter().copied().map(Scope::from).collect();
    apikeys::validate(&body.name, &scopes)?;
    may_grant(caller, &scopes)?;
    let created = apikeys::create(
        &app.db,
        owner.clone(),
        &body.name,
        &scopes,
        &caller.id(),
        app.now(),
    )
    .await?;
    app.audit(
        &owner,
        caller,
        "key.create",
        &created.key.id,
        serde_json::json!({"name": created.key.name, "scopes": created.key.scopes}),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedKey {
            key: created.secret,
            view: created.key.into(),
        }),
    ))
}

async fn revoke(
    app: &AppState,
    caller: &Caller,
    owner: Owner,
    key_id: &str,
) -> ApiResult<axum::Json<KeyView>> {
    if key_id.len() > 32 {
        return Err(Problem::not_found());
    }
    let key = apikeys::revoke(&app.db, &owner, key_id, app.now()).await?;
    app.audit(&owner, caller, "key.revoke", &key.id, serde_json::json!({}))
        .await;
    Ok(axum::Json(key.into()))
}

/// The provider's keys.
#[utoipa::path(get, path = "/v1/keys", tag = "keys", params(PageQuery),
    responses((status = 200, description = "OK", body = KeyPage), Problems))]
async fn list_platform_keys(
    State(app): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<axum::Json<KeyPage>> {
    caller.require_platform()?;
    let query = query?;
    list(&app, Owner::Platform, query).await
}

/// Creates a provider key (every tenant, within its scopes).
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = NewKey,
    responses((status = 201, description = "Created: the whole key is shown this once", body = CreatedKey), Problems, BodyProblems))]
async fn create_platform_key(
    State(app): State<AppState>,
    caller: Caller,
    Json(body): Json<NewKey>,
) -> ApiResult<(StatusCode, axum::Json<CreatedKey>)> {
    caller.require_platform()?;
    let body = body?;
    create(&app, &caller, Owner::Platform, body).await
}

/// Revokes a provider key at once.
#[utoipa::path(delete, path = "/v1/keys/{key_id}", tag = "keys", params(("key_id" = String, Path, max_length = 32)),
    responses((status = 200, description = "OK", body = KeyView), Problems))]
async fn revoke_platform_key(
    State(app): State<AppState>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> ApiResult<axum::Json<KeyView>> {
    caller.require_platform()?;
    revoke(&app, &caller, Owner::Platform, &key_id).await
}

/// The tenant's keys.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/keys", tag = "keys",
    params(("tenant" = String, Path, description = "The tenant's number id"), PageQuery),
    responses((status = 200, description = "OK", body = KeyPage), Problems))]
async fn list_tenant_keys(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult<axum::Json<KeyPage>> {
    let tenant = app.tenant(&caller, &tenant, Need::Admin).await?;
    let query = query?;
    list(&app, Owner::Tenant(tenant), query).await
}

/// Creates a key of the tenant.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/keys", tag = "keys", request_body = NewKey,
    params(("tenant" = String, Path, description = "The tenant's number id")),
    responses((status = 201, description = "Created: the whole key is shown this once", body = CreatedKey), Problems, BodyProblems))]
async fn create_tenant_key(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Json(body): Json<NewKey>,
) -> ApiResult<(StatusCode, axum::Json<CreatedKey>)> {
    let tenant = app.tenant(&caller, &tenant, Need::Admin).await?;
    let body = body?;
    create(&app, &caller, Owner::Tenant(tenant), body).await
}

/// Revokes a key of the tenant at once.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/keys/{key_id}", tag = "keys",
    params(("tenant" = String, Path, description = "The tenant's number id"), ("key_id" = String, Path, max_length = 32)),
    responses((status = 200, description = "OK", body = KeyView), Problems))]
async fn revoke_tenant_key(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, key_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<KeyView>> {
    let tenant = app.tenant(&caller, &tenant, Need::Admin).await?;
    revoke(&app, &caller, Owner::Tenant(tenant), &key_id).await
}
