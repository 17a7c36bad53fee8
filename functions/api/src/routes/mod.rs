//! The routes, one module per group. Each handler is registered with `routes!`, which also
//! puts its path item in the OpenAPI document: paths and methods cannot drift.

pub mod audit;
pub mod campaigns;
pub mod conversations;
pub mod hooks;
pub mod keys;
pub mod members;
pub mod meta;
pub mod reports;
pub mod rights;
pub mod send;
pub mod suppressions;
pub mod templates;
pub mod tenants;

use serde::Serialize;
use shared::platform::access::{Role, Scope};
use utoipa::{IntoResponses, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::problem::{Problem, Problem as Body};

pub fn all() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(meta::routes())
        .merge(keys::routes())
        .merge(members::routes())
        .merge(audit::routes())
        .merge(reports::routes())
        .merge(rights::routes())
        .merge(send::routes())
        .merge(campaigns::routes())
        .merge(hooks::routes())
        .merge(suppressions::routes())
        .merge(templates::routes())
        .merge(conversations::routes())
        .merge(tenants::routes())
}

/// The problems any authenticated route may answer.
#[derive(IntoResponses)]
#[allow(dead_code)] // only read by the OpenAPI derive
pub enum Problems {
    /// A field of the request is not valid (`errors` names it).
    #[response(status = 400, content_type = "application/problem+json")]
    Invalid(Body),
    /// No valid API key or access token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthenticated(Body),
    /// The caller's scopes or role do not allow this.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Body),
    /// Nothing the caller may see under that name.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Body),
    /// Too many calls: retry after `Retry-After` seconds.
    #[response(status = 429, content_type = "application/problem+json")]
    RateLimited(Body),
    /// A dependency did not answer.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Body),
}

/// The problems of a route that takes a JSON body, besides [`Problems`].
#[derive(IntoResponses)]
#[allow(dead_code)] // only read by the OpenAPI derive
pub enum BodyProblems {
    /// The body is larger than the route takes.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Body),
    /// The body is not JSON.
    #[response(status = 415, content_type = "application/problem+json")]
    MediaType(Body),
}

/// A tenant is named by its number id (digits): anything else cannot exist.
pub fn tenant_id(tenant: &str) -> Result<&str, Problem> {
    if (1..=30).contains(&tenant.len()) && tenant.bytes().all(|b| b.is_ascii_digit()) {
        Ok(tenant)
    } else {
        Err(Problem::not_found())
    }
}

/// What an API key may do (`admin` includes `read`, `send` and `hooks:manage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub enum ScopeName {
    #[serde(rename = "read")]
    Read,
    #[serde(rename = "send")]
    Send,
    #[serde(rename = "admin")]
    Admin,
    #[serde(rename = "campaigns:write")]
    CampaignsWrite,
    #[serde(rename = "hooks:manage")]
    HooksManage,
}

impl From<ScopeName> for Scope {
    fn from(scope: ScopeName) -> Self {
        match scope {
            ScopeName::Read => Scope::Read,
            ScopeName::Send => Scope::Send,
            ScopeName::Admin => Scope::Admin,
            ScopeName::CampaignsWrite => Scope::CampaignsWrite,
            ScopeName::HooksManage => Scope::HooksManage,
        }
    }
}

impl From<Scope> for ScopeName {
    fn from(scope: Scope) -> Self {
        match scope {
            Scope::Read => ScopeName::Read,
            Scope::Send => ScopeName::Send,
            Scope::Admin => ScopeName::Admin,
            Scope::CampaignsWrite => ScopeName::CampaignsWrite,
            Scope::HooksManage => ScopeName::HooksManage,
        }
    }
}

/// A person's role in a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    Agent,
    Supervisor,
    Admin,
}

impl From<RoleName> for Role {
    fn from(role: RoleName) -> Self {
        match role {
            RoleName::Agent => Role::Agent,
            RoleName::Supervisor => Role::Supervisor,
            RoleName::Admin => Role::Admin,
        }
    }
}

impl From<Role> for RoleName {
    fn from(role: Role) -> Self {
        match role {
            Role::Agent => RoleName::Agent,
            Role::Supervisor => RoleName::Supervisor,
            Role::Admin => RoleName::Admin,
        }
    }
}
