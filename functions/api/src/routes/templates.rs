//! The tenant's message templates as Meta last said them: the status and category of each
//! (name, language), kept from Meta's template webhooks and from syncs with Graph's list
//! (`ops templates sync`). What a campaign may use, and why one stopped.

use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::platform::access::Need;
use shared::platform::templates::{self, StoredTemplate};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Problems;
use crate::AppState;
use crate::auth::Caller;
use crate::problem::ApiResult;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_templates))
}

/// One template of the tenant's WhatsApp Business Account.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateView {
    pub name: String,
    pub language: String,
    /// APPROVED, PAUSED, DISABLED, REJECTED, PENDING, ... as Meta said last.
    pub status: Option<String>,
    /// MARKETING, UTILITY or AUTHENTICATION.
    pub category: Option<String>,
    /// Why Meta rejected, paused or disabled it, when it said.
    pub reason: Option<String>,
    /// GREEN, YELLOW, RED or UNKNOWN, once Meta scored it.
    pub quality: Option<String>,
    /// When Meta said the status.
    pub at: Option<DateTime<Utc>>,
}

impl From<StoredTemplate> for TemplateView {
    fn from(template: StoredTemplate) -> Self {
        let StoredTemplate {
            name,
            language,
            status,
            category,
            reason,
            quality,
            at,
        } = template;
        Self {
            name,
            language,
            status,
            category,
            reason,
            quality,
            at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateList {
    pub templates: Vec<TemplateView>,
}

/// The account's templates, by name then language.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/templates", tag = "templates",
    params(("tenant" = String, Path, description = "The tenant's number id")),
    responses((status = 200, description = "OK", body = TemplateList), Problems))]
async fn list_templates(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<axum::Json<TemplateList>> {
    let tenant = app.tenant(&caller, &tenant, Need::Read).await?;
    let waba_id = templates::tenant(&app.db, &tenant).await?.waba_id;
    let stored = templates::stored(&app.db, &waba_id).await?;
    Ok(axum::Json(TemplateList {
        templates: stored.into_iter().map(Into::into).collect(),
    }))
}
