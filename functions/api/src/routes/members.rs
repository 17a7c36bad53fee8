//! People: the provider's admins (`/v1/members`) and each tenant's members with a role
//! (`/v1/tenants/{tenant}/members`). Adding an e-mail the user pool does not know invites
//! that person (Cognito sends a temporary password).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::platform::access::{Need, Owner, Role};
use shared::platform::members::{self, Member};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{BodyProblems, Problems, RoleName};
use crate::AppState;
use crate::auth::Caller;
use crate::extract::{Json, Query};
use crate::page::{PageQuery, next_cursor};
use crate::problem::{ApiResult, Problem};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_platform_admins, add_platform_admin))
        .routes(routes!(remove_platform_admin))
        .routes(routes!(list_tenant_members, put_tenant_member))
        .routes(routes!(remove_tenant_member))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlatformAdmin {
    #[schema(format = "email", max_length = 254)]
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    #[schema(format = "email", max_length = 254)]
    pub email: String,
    pub role: RoleName,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    /// The person's id in the user pool (Cognito `sub`).
    pub sub: String,
    pub email: String,
    pub role: RoleName,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
}

impl From<Member> for MemberView {
    fn from(member: Member) -> Self {
        Self {
            sub: member.sub,
            email: member.email,
            role: member.role.into(),
            added_by: member.added_by,
            added_at: member.added_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberPage {
    pub items: Vec<MemberView>,
    pub next_cursor: Option<String>,
}

async fn list(app: &AppState, owner: Owner, query: PageQuery) -> ApiResult<axum::Json<MemberPage>> {
    let binding = format!("members|{}", owner.key());
    let page = members::list(
        &app.db,
        &owner,
        query.limit()?,
        query.start(app, &binding)?.as_ref(),
    )
    .await?;
    Ok(axum::Json(MemberPage {
        next_cursor: next_cursor(app, &binding, &page),
        items: page.items.into_iter().map(MemberView::from).collect(),
    }))
}

async fn put(
    app: &AppState,
    caller: &Caller,
    owner: Owner,
    email: &str,
    role: Role,
) -> ApiResult<(StatusCode, axum::Json<MemberView>)> {
    let email = members::validate_email(email)?;
    let sub = app.directory.find_or_invite(&email).await?;
    let member = Member {
        sub,
        email,
        role,
        added_by: caller.id(),
        added_at: app.now(),
    };
    members::put(&app.db, &owner, &member).await?;
    app.audit(
        &owner,
        caller,
        "member.put",
        &member.sub,
        serde_json::json!({"role": role.as_str()}),
    )
    .await;
    Ok((StatusCode::OK, axum::Json(member.into())))
}

async fn remove(app: &AppState, caller: &Caller, owner: Owner, sub: &str) -> ApiResult<StatusCode> {
    if sub.len() > 128 {
        return Err(Problem::not_found());
    }
    members::remove(&app.db, &owner, sub).await?;
    app.audit(&owner, caller, "member.remove", sub, serde_json::json!({}))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The provider's admins.
#[utoipa::path(get, path = "/v1/members", tag = "members", params(PageQuery), responses((status = 200, description = "OK", body = MemberPage), Problems))]
async fn list_platform_admins(
    State(app): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<axum::Json<MemberPage>> {
    caller.require_platform()?;
    let query = query?;
    list(&app, Owner::Platform, query).await
}

/// Makes a person a platform admin (inviting the e-mail when the pool does not know it).
#[utoipa::path(post, path = "/v1/members", tag = "members", request_body = NewPlatformAdmin,
    responses((status = 200, description = "OK", body = MemberView), Problems, BodyProblems))]
async fn add_platform_admin(
    State(app): State<AppState>,
    caller: Caller,
    Json(body): Json<NewPlatformAdmin>,
) -> ApiResult<(StatusCode, axum::Json<MemberView>)> {
    caller.require_platform()?;
    let body = body?;
    put(&app, &caller, Owner::Platform, &body.email, Role::Admin).await
}

/// Removes a platform admin.
#[utoipa::path(delete, path = "/v1/members/{sub}", tag = "members", params(("sub" = String, Path, max_length = 128)),
    responses((status = 204, description = "Removed"), Problems))]
async fn remove_platform_admin(
    State(app): State<AppState>,
    caller: Caller,
    Path(sub): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_platform()?;
    remove(&app, &caller, Owner::Platform, &sub).await
}

/// The tenant's members and their roles.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/members", tag = "members",
    params(("tenant" = String, Path, description = "The tenant's number id"), PageQuery),
    responses((status = 200, description = "OK", body = MemberPage), Problems))]
async fn list_tenant_members(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult<axum::Json<MemberPage>> {
    let tenant = app.tenant(&caller, &tenant, Need::Admin).await?;
    let query = query?;
    list(&app, Owner::Tenant(tenant), query).await
}

/// Adds a member with a role, or changes a member's role.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/members", tag = "members", request_body = NewMember,
    params(("tenant" = String, Path, description = "The tenant's number id")),
    responses((status = 200, description = "OK", body = MemberView), Problems, BodyProblems))]
async fn put_tenant_member(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Json(body): Json<NewMember>,
) -> ApiResult<(StatusCode, axum::Json<MemberView>)> {
    let tenant = app.tenant(&caller, &tenant, Need::Admin).await?;
    let body = body?;
    put(
        &app,
        &caller,
        Owner::Tenant(tenant),
        &body.email,
        body.role.into(),
    )
    .await
}

/// Removes a member from the tenant.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/members/{sub}", tag = "members",
    params(("tenant" = String, Path, description = "The tenant's number id"), ("sub" = String, Path, max_length = 128)),
    responses((status = 204, description = "Removed"), Problems))]
async fn remove_tenant_member(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, sub)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let tenant = app.tenant(&caller, &tenant, Need::Admin).await?;
    remove(&app, &caller, Owner::Tenant(tenant), &sub).await
}
