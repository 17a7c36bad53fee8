//! The provider's tenants (`/v1/tenants`): list, create, read, change, versions, restore,
//! disable and enable, through `shared::platform::tenants` (the ops CLI's code path too),
//! which also writes each change to the tenant's audit log.
//!
//! Who: the provider (platform admins, platform keys with `admin`) for everything; a
//! tenant's admin (person or key with `admin`) reads its own config and versions, changes
//! it and restores a version, but not `phone_number_id`, `waba_id` or `features`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::platform::access::Need;
use shared::platform::tenants::{
    self, AdminError, Source, StoredTenant, TenantSummary, ValidTenant, VersionInfo,
};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{BodyProblems, Problems};
use crate::AppState;
use crate::auth::Caller;
use crate::extract::{Json, Query};
use crate::page::{PageQuery, next_cursor};
use crate::problem::{ApiResult, Problem};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(get_tenant, update_tenant))
        .routes(routes!(list_versions))
        .routes(routes!(restore_version))
        .routes(routes!(disable_tenant))
        .routes(routes!(enable_tenant))
}

/// Where the tenant sits in a request body: validation errors point under it.
const CONFIG: &str = "/config";

fn problem(error: AdminError) -> Problem {
    error.into_platform(CONFIG).into()
}

/// The smallest valid tenant, the documented example of a config (the contract test sends
/// it): one department and the texts every tenant must have.
fn example_config(phone_number_id: Option<&str>) -> Value {
    let mut config = json!({
        "waba_id": "102290129340399",
        "name": "Loja Exemplo",
        "timezone": "America/Sao_Paulo",
        "business_hours": {"monday": [{"open": "08:00", "close": "18:00"}]},
        "texts": {
            "greeting": "Olá{name}! Bem-vindo(a) à Loja Exemplo.",
            "not_understood": "Desculpe, não entendi. Escolha uma das opções.",
            "off_hours": "Atendemos às segundas, das 8h às 18h.",
            "handoff": "Vou transferir você para um atendente.",
            "ai_unavailable": "Vou chamar um atendente para você."
        },
        "menu": {
            "body": "Como podemos ajudar?",
            "button": "Ver opções",
            "options": [{"id": "atendente", "title": "Falar com atendente", "target": {"department": "geral"}}]
        },
        "departments": [{"id": "geral", "name": "Atendimento geral",
            "sla": {"alert_after_minutes": 10, "max_wait_minutes": 30}}],
        "nps": {"enabled": false, "question": "De 0 a 10, quanto você nos recomendaria?",
            "thanks": "Obrigado!", "goodbye": "Atendimento encerrado."}
    });
    if let Some(number) = phone_number_id {
        config["phone_number_id"] = json!(number);
    }
    config
}

/// A new tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"config": example_config(Some("106540352242925"))}))]
pub struct NewTenant {
    /// The tenant as a JSON object (the fields of a tenant file), or a tenant file's YAML
    /// text as a string. Held to the files' rules; errors point into it
    /// (`/config/menu/options/1/target`).
    #[schema(value_type = Object)]
    pub config: Value,
}

/// A tenant's new config.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"config": example_config(None)}))]
pub struct TenantUpdate {
    /// As in [`NewTenant`]; its `phone_number_id` must be the tenant's (an object without
    /// one takes the tenant's).
    #[schema(value_type = Object)]
    pub config: Value,
    /// Change only while the tenant is at this version (409 otherwise); the `If-Match`
    /// header says the same.
    #[schema(minimum = 0)]
    pub expected_version: Option<u64>,
}

/// A tenant in the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantSummaryView {
    pub phone_number_id: String,
    pub name: String,
    /// 0 for a tenant stored before versions were kept.
    pub version: u64,
    /// A disabled tenant's messages are parked and nothing is sent for it.
    pub disabled: bool,
    pub updated_at: Option<String>,
    /// Who stored the current version (`key:<id>`, `person:<sub>`, `ops:<login>`).
    pub updated_by: Option<String>,
}

impl From<TenantSummary> for TenantSummaryView {
    fn from(tenant: TenantSummary) -> Self {
        Self {
            phone_number_id: tenant.phone_number_id,
            name: tenant.name,
            version: tenant.version,
            disabled: tenant.disabled,
            updated_at: tenant.updated_at,
            updated_by: tenant.updated_by,
        }
    }
}

/// A tenant with its config.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    #[serde(flatten)]
    pub summary: TenantSummaryView,
    /// The config as stored (the fields of a tenant file).
    #[schema(value_type = Object)]
    pub config: Value,
}

impl From<StoredTenant> for TenantView {
    fn from(tenant: StoredTenant) -> Self {
        Self {
            summary: tenant.summary.into(),
            config: tenant.config,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantPage {
    pub items: Vec<TenantSummaryView>,
    pub next_cursor: Option<String>,
}

/// One stored version of a tenant's config.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    pub version: u64,
    pub name: String,
    pub updated_at: String,
    pub updated_by: String,
    /// The version this one restored.
    pub restored_from: Option<u64>,
}

impl From<VersionInfo> for VersionView {
    fn from(version: VersionInfo) -> Self {
        Self {
            version: version.version,
            name: version.name,
            updated_at: version.updated_at,
            updated_by: version.updated_by,
            restored_from: version.restored_from,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionPage {
    pub items: Vec<VersionView>,
    pub next_cursor: Option<String>,
}

/// The tenant with its version as the `ETag` (`"3"`), for a later `If-Match`.
fn with_etag(status: StatusCode, tenant: StoredTenant) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", tenant.summary.version))
        .expect("digits make a header value");
    (
        status,
        [(header::ETAG, etag)],
        axum::Json(TenantView::from(tenant)),
    )
        .into_response()
}

fn parse(config: &Value) -> Result<ValidTenant, Problem> {
    let source = match config {
        Value::String(text) => Source::Text(text),
        other => Source::Json(other),
    };
    tenants::parse("config", source).map_err(|error| problem(AdminError::Invalid(error)))
}

/// `If-Match: "3"` (or `3`), and the body's `expected_version`: they must agree.
fn expected_version(headers: &HeaderMap, body: Option<u64>) -> Result<Option<u64>, Problem> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(body);
    };
    let header = value
        .to_str()
        .ok()
        .map(|v| v.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| Problem::invalid("/header/if-match", "a tenant version, e.g. \"3\""))?;
    match body {
        Some(body) if body != header => Err(Problem::invalid(
            "/expected_version",
            "differs from If-Match",
        )),
        _ => Ok(Some(header)),
    }
}

/// A tenant's admin who is not the provider: the provider's fields must stay as they are,
/// checked against the version the write then expects.
async fn tenant_admin_write(
    app: &AppState,
    caller: &Caller,
    tenant: &str,
    new: &ValidTenant,
    expected: Option<u64>,
) -> ApiResult<Option<u64>> {
    if caller.require_platform().is_ok() {
        return Ok(expected);
    }
    let current = tenants::get(&app.db, tenant).await.map_err(problem)?;
    tenants::check_tenant_admin_change(&current.config, new).map_err(problem)?;
    Ok(Some(expected.unwrap_or(current.summary.version)))
}

/// Every tenant, by number id.
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", params(PageQuery),
    responses((status = 200, description = "OK", body = TenantPage), Problems))]
async fn list_tenants(
    State(app): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<axum::Json<TenantPage>> {
    caller.require_platform()?;
    let query = query?;
    let binding = "tenants|";
    let limit = query.limit()? as u32;
    let page = tenants::list(&app.db, limit, query.start(&app, binding)?.as_ref())
        .await
        .map_err(problem)?;
    Ok(axum::Json(TenantPage {
        next_cursor: next_cursor(&app, binding, &page),
        items: page.items.into_iter().map(Into::into).collect(),
    }))
}

/// Creates a tenant (version 1), held to the tenant files' rules.
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = NewTenant,
    responses((status = 201, description = "Created", body = TenantView,
        headers(("ETag" = String, description = "The version, for If-Match"))),
        (status = 409, description = "The number has a tenant already", body = Problem, content_type = "application/problem+json"),
        Problems, BodyProblems))]
async fn create_tenant(
    State(app): State<AppState>,
    caller: Caller,
    Json(body): Json<NewTenant>,
) -> ApiResult<Response> {
    caller.require_platform()?;
    let body = body?;
    let tenant = parse(&body.config)?;
    let written = tenants::create(&app.db, &tenant, &caller.id())
        .await
        .map_err(problem)?;
    Ok(with_etag(StatusCode::CREATED, written.tenant))
}

/// The tenant's config, version and state.
#[utoipa::path(get, path = "/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant's number id")),
    responses((status = 200, description = "OK", body = TenantView,
        headers(("ETag" = String, description = "The version, for If-Match"))), Problems))]
async fn get_tenant(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<Response> {
    let tenant = app.tenant(&caller, &tenant, Need::Admin).await?;
    let stored = tenants::get(&app.db, &tenant).await.map_err(problem)?;
    Ok(with_etag(StatusCode::OK, stored))
}

/// Stores a new config as the next version. Give the version read (`If-Match` or
/// `expected_version`) so that a change made meanwhile is not overwritten (409).
#[utoipa::path(put, path = "/v1/tenants/{tenant}", tag = "tenants", request_body = TenantUpdate,
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("If-Match" = Option<String>, Header, description = "The version read, as its ETag (\"3\")")),
    responses((status = 200, description = "Stored (or unchanged: the same config)", body = TenantView,
        headers(("ETag" = String, description = "The version, for If-Match"))),
        (status = 409, description = "The tenant is at another version", body = Problem, content_type = "application/problem+json"),
        Problems, BodyProblems))]
async fn update_tenant(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Json(body): Json<TenantUpdate>,
) -> ApiResult<Response> {
    let tenant = app.tenant(&caller, &tenant, Need::Admin).await?;
    let body = body?;
    let expected = expected_version(&headers, body.expected_version)?;
    let mut config = body.config;
    if let Value::Object(fields) = &mut config {
        fields
            .entry("phone_number_id")
            .or_insert_with(|| Value::String(tenant.clone()));
    }
    let new = parse(&config)?;
    let expected = tenant_admin_write(&app, &caller, &tenant, &new, expected).await?;
    let written = tenants::update(&app.db, &tenant, &new, expected, &caller.id())
        .await
        .map_err(problem)?;
    Ok(with_etag(StatusCode::OK, written.tenant))
}

/// The tenant's stored versions, newest first.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/versions", tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant's number id"), PageQuery),
    responses((status = 200, description = "OK", body = VersionPage), Problems))]
async fn list_versions(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult<axum::Json<VersionPage>> {
    let tenant = app.tenant(&caller, &tenant, Need::Admin).await?;
    let query = query?;
    let binding = format!("tenant-versions|{tenant}");
    let limit = query.limit()? as u32;
    let page = tenants::versions(
        &app.db,
        &tenant,
        limit,
        query.start(&app, &binding)?.as_ref(),
    )
    .await
    .map_err(problem)?;
    Ok(axum::Json(VersionPage {
        next_cursor: next_cursor(&app, &binding, &page),
        items: page.items.into_iter().map(Into::into).collect(),
    }))
}

/// Stores an earlier version's config again, as the next version (checked against
/// today's rules first: 422 when it no longer passes).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/versions/{version}/restore", tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("version" = u64, Path, minimum = 1, description = "The version to restore"),
        ("If-Match" = Option<String>, Header, description = "The current version, as its ETag (\"3\")")),
    responses((status = 200, description = "Restored (or unchanged: that config is current)", body = TenantView,
        headers(("ETag" = String, description = "The version, for If-Match"))),
        (status = 409, description = "The tenant is at another version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The version no longer passes validation", body = Problem, content_type = "application/problem+json"),
        Problems))]
async fn restore_version(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let tenant = app.tenant(&caller, &tenant, Need::Admin).await?;
    let version: u64 = version.parse().map_err(|_| Problem::not_found())?;
    let mut expected = expected_version(&headers, None)?;
    if caller.require_platform().is_err() {
        let earlier = tenants::get_version(&app.db, &tenant, version)
            .await
            .map_err(problem)?;
        let restored = tenants::parse(&format!("version {version}"), Source::Json(&earlier.config))
            .map_err(|error| problem(AdminError::Unrestorable { version, error }))?;
        expected = tenant_admin_write(&app, &caller, &tenant, &restored, expected).await?;
    }
    let written = tenants::rollback(&app.db, &tenant, version, expected, &caller.id())
        .await
        .map_err(problem)?;
    Ok(with_etag(StatusCode::OK, written.tenant))
}

async fn set_disabled(
    app: &AppState,
    caller: &Caller,
    tenant: &str,
    disabled: bool,
) -> ApiResult<axum::Json<TenantSummaryView>> {
    caller.require_platform()?;
    let tenant = super::tenant_id(tenant)?;
    let written = tenants::set_disabled(&app.db, tenant, disabled, &caller.id())
        .await
        .map_err(problem)?;
    Ok(axum::Json(written.tenant.summary.into()))
}

/// Disables the tenant: its messages and desk events are parked (replayable once
/// enabled), nothing is sent for it, the schedules skip it. Running functions notice
/// within 60 s.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/disable", tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant's number id")),
    responses((status = 200, description = "Disabled", body = TenantSummaryView), Problems))]
async fn disable_tenant(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<axum::Json<TenantSummaryView>> {
    set_disabled(&app, &caller, &tenant, true).await
}

/// Enables the tenant again; what was parked meanwhile is answered once replayed
/// (`ops parked replay`).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/enable", tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant's number id")),
    responses((status = 200, description = "Enabled", body = TenantSummaryView), Problems))]
async fn enable_tenant(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<axum::Json<TenantSummaryView>> {
    set_disabled(&app, &caller, &tenant, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_is_a_valid_tenant() {
        let tenant = parse(&example_config(Some("106540352242925"))).unwrap();
        assert_eq!(tenant.tenant().phone_number_id, "106540352242925");
        assert!(
            parse(&example_config(None)).is_err(),
            "a new tenant names its number"
        );
    }
}
