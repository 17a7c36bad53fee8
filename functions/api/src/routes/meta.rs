//! The contract itself, and who the caller is.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use shared::platform::access::{Owner, Principal};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Problems, RoleName, ScopeName};
use crate::auth::Caller;
use crate::problem::ApiResult;
use crate::{AppState, OPENAPI_JSON};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .routes(routes!(me))
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    /// `key` or `person`.
    pub kind: String,
    /// `key:<id>` or `person:<sub>`: how audit entries name the caller.
    pub id: String,
    pub platform_admin: bool,
    /// A tenant key's tenant, or the tenants a person is a member of.
    pub tenants: Vec<TenantAccess>,
    /// An API key's scopes (empty for a person).
    pub scopes: Vec<ScopeName>,
}

#[derive(Serialize, ToSchema)]
pub struct TenantAccess {
    pub tenant: String,
    /// A person's role; null for a key.
    pub role: Option<RoleName>,
}

/// Who the caller is and what it may reach.
#[utoipa::path(get, path = "/v1/me", tag = "meta", responses((status = 200, description = "OK", body = Me), Problems))]
async fn me(_: State<AppState>, caller: Caller) -> ApiResult<axum::Json<Me>> {
    let me = match &caller.principal {
        Principal::Key { owner, scopes, .. } => Me {
            kind: "key".into(),
            id: caller.id(),
            platform_admin: *owner == Owner::Platform
                && scopes.contains(&shared::platform::access::Scope::Admin),
            tenants: owner
                .tenant()
                .map(|tenant| TenantAccess {
                    tenant: tenant.to_owned(),
                    role: None,
                })
                .into_iter()
                .collect(),
            scopes: scopes.iter().copied().map(ScopeName::from).collect(),
        },
        Principal::Person {
            platform_admin,
            memberships,
            ..
        } => Me {
            kind: "person".into(),
            id: caller.id(),
            platform_admin: *platform_admin,
            tenants: memberships
                .iter()
                .map(|(tenant, role)| TenantAccess {
                    tenant: tenant.clone(),
                    role: Some((*role).into()),
                })
                .collect(),
            scopes: Vec::new(),
        },
    };
    Ok(axum::Json(me))
}
