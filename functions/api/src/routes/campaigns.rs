//! Campaigns (`/v1/tenants/{tenant}/campaigns`): a draft written by a person or a system
//! (a key with `campaigns:write`, for a named person), its audience imported (a list in the
//! body, or a CSV uploaded to a presigned URL), submitted, approved or rejected by another
//! person (a supervisor or admin), then paused, resumed or cancelled. The report reads the
//! sender's counters.
//!
//! Who: reading needs `read`; writing, importing, submitting, pausing and cancelling need
//! `campaigns:write` (a key) or a supervisor's or admin's role; approving, rejecting and
//! resuming are people's only (a key is refused, whatever its scopes). Nobody approves a
//! campaign they wrote, submitted, or that was written for them.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use aws_sdk_s3::presigning::PresigningConfig;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use shared::campaign::audience::{self, Parameter, Rejected, RowError};
use shared::campaign::{Operation, State as CampaignState};
use shared::platform::access::Need;
use shared::platform::campaigns::{self, Campaign, Fields, Imported, Note};
use utoipa::{IntoParams, IntoResponses, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{BodyProblems, Problems};
use crate::AppState;
use crate::auth::Caller;
use crate::extract::{Json, Query};
use crate::page::{PageQuery, next_cursor};
use crate::problem::{ApiResult, Problem, Problem as Body};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_campaigns, create_campaign))
        .routes(routes!(get_campaign, update_campaign))
        .routes(routes!(import_audience))
        .routes(routes!(upload_audience))
        .routes(routes!(submit_campaign))
        .routes(routes!(approve_campaign))
        .routes(routes!(reject_campaign))
        .routes(routes!(pause_campaign))
        .routes(routes!(resume_campaign))
        .routes(routes!(cancel_campaign))
        .routes(routes!(campaign_report))
}

/// How long a presigned upload URL works.
pub const UPLOAD_VALID: StdDuration = StdDuration::from_secs(15 * 60);
/// The largest CSV imported (100,000 rows are about 6 MB).
pub const MAX_UPLOAD_BYTES: i64 = 32 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStateName {
    Draft,
    Submitted,
    Approved,
    Rejected,
    Scheduled,
    Running,
    Paused,
    Cancelled,
    Done,
}

impl From<CampaignStateName> for CampaignState {
    fn from(state: CampaignStateName) -> Self {
        match state {
            CampaignStateName::Draft => CampaignState::Draft,
            CampaignStateName::Submitted => CampaignState::Submitted,
            CampaignStateName::Approved => CampaignState::Approved,
            CampaignStateName::Rejected => CampaignState::Rejected,
            CampaignStateName::Scheduled => CampaignState::Scheduled,
            CampaignStateName::Running => CampaignState::Running,
            CampaignStateName::Paused => CampaignState::Paused,
            CampaignStateName::Cancelled => CampaignState::Cancelled,
            CampaignStateName::Done => CampaignState::Done,
        }
    }
}

impl From<CampaignState> for CampaignStateName {
    fn from(state: CampaignState) -> Self {
        match state {
            CampaignState::Draft => CampaignStateName::Draft,
            CampaignState::Submitted => CampaignStateName::Submitted,
            CampaignState::Approved => CampaignStateName::Approved,
            CampaignState::Rejected => CampaignStateName::Rejected,
            CampaignState::Scheduled => CampaignStateName::Scheduled,
            CampaignState::Running => CampaignStateName::Running,
            CampaignState::Paused => CampaignStateName::Paused,
            CampaignState::Cancelled => CampaignStateName::Cancelled,
            CampaignState::Done => CampaignStateName::Done,
        }
    }
}

/// How one template parameter is filled: a column of the audience, or one text for all.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ParameterSpec {
    /// The audience's column of that name (`nome`), 1 to 1024 characters.
    Column(String),
    /// The same text for everyone, 1 to 1024 characters.
    Text(String),
}

impl From<ParameterSpec> for Parameter {
    fn from(spec: ParameterSpec) -> Self {
        match spec {
            ParameterSpec::Column(column) => Parameter::Column(column),
            ParameterSpec::Text(text) => Parameter::Text(text),
        }
    }
}

impl From<Parameter> for ParameterSpec {
    fn from(parameter: Parameter) -> Self {
        match parameter {
            Parameter::Column(column) => ParameterSpec::Column(column),
            Parameter::Text(text) => ParameterSpec::Text(text),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    #[schema(min_length = 1, max_length = 200, example = "Black Friday")]
    pub name: String,
    /// The approved template's name.
    #[schema(pattern = "^[a-z0-9_]{1,512}$", example = "promo_novembro")]
    pub template_name: String,
    #[schema(pattern = "^[a-z]{2,3}(_[A-Za-z]{2,4})?$", example = "pt_BR")]
    pub template_language: String,
    /// The template's body parameters in order.
    #[serde(default)]
    #[schema(max_items = 64)]
    pub parameters: Vec<ParameterSpec>,
    /// When sending starts (absent: when approved).
    pub start_at: Option<DateTime<Utc>>,
    /// Send only within the tenant's business hours.
    #[serde(default)]
    pub business_hours_only: bool,
    /// The person (Cognito `sub`, a member of the tenant) a key writes the campaign for:
    /// required of a key, ignored for a person.
    #[schema(max_length = 128)]
    pub on_behalf_of: Option<String>,
}

/// `null` and absent told apart: `start_at: null` clears the start.
pub(super) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignChanges {
    /// The version read: the change is refused (409) when the campaign changed since.
    #[schema(minimum = 1)]
    pub version: u64,
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(pattern = "^[a-z0-9_]{1,512}$")]
    pub template_name: Option<String>,
    #[schema(pattern = "^[a-z]{2,3}(_[A-Za-z]{2,4})?$")]
    pub template_language: Option<String>,
    #[schema(max_items = 64)]
    pub parameters: Option<Vec<ParameterSpec>>,
    /// `null` starts it when approved.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub start_at: Option<Option<DateTime<Utc>>>,
    pub business_hours_only: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignView {
    /// `cmp_` and 26 characters.
    pub id: String,
    pub state: CampaignStateName,
    /// Changes with every write: a `PATCH` sends the version it read.
    pub version: u64,
    pub name: String,
    pub template_name: String,
    pub template_language: String,
    /// The template's category at WhatsApp, once submitted.
    pub template_category: Option<String>,
    pub parameters: Vec<ParameterSpec>,
    pub start_at: Option<DateTime<Utc>>,
    pub business_hours_only: bool,
    /// `key:<id>` or `person:<sub>`.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub on_behalf_of: Option<String>,
    pub submitted_by: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub reject_reason: Option<String>,
    pub paused_reason: Option<String>,
    /// Recipients imported (suppressed customers and bad rows left out).
    pub audience_size: Option<u64>,
    pub suppressed: Option<u64>,
    pub bad_rows: Option<u64>,
}

impl From<Campaign> for CampaignView {
    fn from(campaign: Campaign) -> Self {
        Self {
            id: campaign.id,
            state: campaign.state.into(),
            version: campaign.version,
            name: campaign.name,
            template_name: campaign.template_name,
            template_language: campaign.template_language,
            template_category: campaign.template_category,
            parameters: campaign.parameters.into_iter().map(Into::into).collect(),
            start_at: campaign.start_at,
            business_hours_only: campaign.business_hours_only,
            created_by: campaign.created_by,
            created_at: campaign.created_at,
            on_behalf_of: campaign.on_behalf_of,
            submitted_by: campaign.submitted_by,
            decided_by: campaign.decided_by,
            decided_at: campaign.decided_at,
            reject_reason: campaign.reject_reason,
            paused_reason: campaign.paused_reason,
            audience_size: campaign.audience_size,
            suppressed: campaign.suppressed,
            bad_rows: campaign.bad_rows,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignPage {
    pub items: Vec<CampaignView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CampaignQuery {
    /// Only campaigns in this state.
    pub state: Option<CampaignStateName>,
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 2048)]
    pub cursor: Option<String>,
}

/// An audience: a list in the body, or the key of a CSV uploaded to the URL
/// `POST .../upload` gave (a header row with `phone` and the parameters' columns).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AudienceBody {
    /// Each recipient: `phone` and the parameters' columns.
    #[schema(max_items = 5000, value_type = Option<Vec<HashMap<String, String>>>)]
    pub recipients: Option<Vec<HashMap<String, String>>>,
    /// The `object_key` of an upload.
    #[schema(max_length = 256)]
    pub object_key: Option<String>,
}

/// A row left out of the audience.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedRow {
    /// The CSV line (1 is the header), or the list's index from 1.
    pub line: u64,
    /// `phone`, `parameter`, `fields`, `encoding` or `duplicate`.
    pub kind: String,
    pub detail: String,
}

impl From<Rejected> for RejectedRow {
    fn from(rejected: Rejected) -> Self {
        let kind = match &rejected.error {
            RowError::Phone { .. } => "phone",
            RowError::Parameter { .. } => "parameter",
            RowError::Fields { .. } => "fields",
            RowError::Encoding => "encoding",
            RowError::Duplicate { .. } => "duplicate",
        };
        Self {
            line: rejected.line,
            kind: kind.to_owned(),
            detail: rejected.error.to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AudienceReport {
    pub campaign: CampaignView,
    /// Recipients written.
    pub audience_size: u64,
    /// Customers left out for their opt-out or erasure.
    pub suppressed: u64,
    /// Rows left out (duplicates included).
    pub bad_rows: u64,
    pub duplicates: u64,
    /// The first 1,000 rows left out, with their line and reason.
    pub rejected: Vec<RejectedRow>,
}

impl From<Imported> for AudienceReport {
    fn from(imported: Imported) -> Self {
        Self {
            campaign: imported.campaign.into(),
            audience_size: imported.audience_size,
            suppressed: imported.suppressed,
            bad_rows: imported.report.bad_rows,
            duplicates: imported.report.duplicates,
            rejected: imported
                .report
                .rejected
                .into_iter()
                .map(Into::into)
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Upload {
    /// `PUT` the CSV here (with the `headers`) before `expires_at`.
    pub url: String,
    pub method: String,
    pub headers: HashMap<String, String>,
    /// What `POST .../audience` names.
    pub object_key: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Why (required to reject; kept with a pause).
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

/// A campaign's live counts, updated as it sends and as WhatsApp's statuses come.
#[derive(Debug, Serialize, ToSchema)]
pub struct Report {
    pub id: String,
    pub state: CampaignStateName,
    /// Recipients imported (opted-out and erased customers left out).
    pub audience_size: Option<u64>,
    /// Customers left out at import for an opt-out or an erasure.
    pub suppressed: Option<u64>,
    /// Rows of the audience left out (bad numbers, duplicates, bad parameters).
    pub bad_rows: Option<u64>,
    /// Recipients the campaign will send to, once it started.
    pub queued: u64,
    /// Queued recipients without an outcome yet (including sends whose outcome is unknown
    /// until their status comes).
    pub pending: u64,
    /// Messages WhatsApp accepted.
    pub sent: u64,
    pub delivered: u64,
    pub read: u64,
    /// Refused at send, or failed after it (a `failed` status).
    pub failed: u64,
    /// `failed` by WhatsApp error code (`invalid`: refused before sending; `unknown`: a
    /// failed status without a code).
    pub failed_by_code: std::collections::BTreeMap<String, u64>,
    /// Skipped at send time: on the suppression list by then.
    pub skipped: u64,
    /// Customers who wrote back within the attribution window, once per send.
    pub replied: u64,
    /// Customers who opted out in a conversation that answered the campaign.
    pub opted_out: u64,
}

impl Report {
    fn of(campaign: campaigns::Campaign) -> Self {
        let count = |name: &str| campaign.counters.get(name).copied().unwrap_or(0);
        let queued = count("n_queued");
        Report {
            queued,
            pending: queued.saturating_sub(count("n_done")),
            sent: count("n_sent"),
            delivered: count("n_delivered"),
            read: count("n_read"),
            failed: count("n_failed"),
            failed_by_code: campaign
                .counters
                .iter()
                .filter_map(|(name, n)| Some((name.strip_prefix("n_failed_")?.to_owned(), *n)))
                .collect(),
            skipped: count("n_skipped"),
            replied: count("n_replied"),
            opted_out: count("n_opted_out"),
            id: campaign.id,
            state: campaign.state.into(),
            audience_size: campaign.audience_size,
            suppressed: campaign.suppressed,
            bad_rows: campaign.bad_rows,
        }
    }
}

/// The answers of a campaign's write besides [`Problems`].
#[derive(IntoResponses)]
#[allow(dead_code)] // only read by the OpenAPI derive
pub enum CampaignProblems {
    /// The campaign changed meanwhile, or its state does not allow this.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Body),
    /// Campaigns are not enabled for the tenant, or the template is not approved, or the
    /// campaign has no audience.
    #[response(status = 422, content_type = "application/problem+json")]
    Refused(Body),
}

fn campaign_id(id: &str) -> Result<&str, Problem> {
    if id.len() <= 64 {
        Ok(id)
    } else {
        Err(Problem::not_found())
    }
}

/// The tenant's campaigns, newest first; `state` keeps one state (a page may be short and
/// still have a next one).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/campaigns", tag = "campaigns",
    params(("tenant" = String, Path, description = "The tenant's number id"), CampaignQuery),
    responses((status = 200, description = "OK", body = CampaignPage), Problems))]
async fn list_campaigns(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Query(query): Query<CampaignQuery>,
) -> ApiResult<axum::Json<CampaignPage>> {
    let tenant = app.tenant(&caller, &tenant, Need::Read).await?;
    let query = query?;
    let state = query.state.map(CampaignState::from);
    let binding = format!("campaigns|{tenant}|{state:?}");
    let paging = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    let page = campaigns::list(
        &app.db,
        &tenant,
        state,
        paging.limit()?,
        paging.start(&app, &binding)?.as_ref(),
    )
    .await?;
    Ok(axum::Json(CampaignPage {
        next_cursor: next_cursor(&app, &binding, &page),
        items: page.items.into_iter().map(CampaignView::from).collect(),
    }))
}

/// Writes a draft. A key names the person it writes for (`on_behalf_of`).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/campaigns", tag = "campaigns", request_body = NewCampaign,
    params(("tenant" = String, Path, description = "The tenant's number id")),
    responses((status = 201, description = "Created", body = CampaignView),
        Problems, BodyProblems, CampaignProblems))]
async fn create_campaign(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Json(body): Json<NewCampaign>,
) -> ApiResult<(StatusCode, axum::Json<CampaignView>)> {
    let tenant = app.tenant(&caller, &tenant, Need::CampaignsWrite).await?;
    let body = body?;
    let fields = Fields {
        name: Some(body.name),
        template_name: Some(body.template_name),
        template_language: Some(body.template_language),
        parameters: Some(body.parameters.into_iter().map(Into::into).collect()),
        start_at: Some(body.start_at),
        business_hours_only: Some(body.business_hours_only),
    };
    let actor = campaigns::actor(&caller.principal, &tenant);
    let campaign = campaigns::create(
        &app.db,
        &tenant,
        actor,
        &fields,
        body.on_behalf_of.as_deref(),
        app.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(campaign.into())))
}

/// One campaign.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/campaigns/{id}", tag = "campaigns",
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("id" = String, Path, max_length = 64, description = "The campaign's id")),
    responses((status = 200, description = "OK", body = CampaignView), Problems))]
async fn get_campaign(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<CampaignView>> {
    let tenant = app.tenant(&caller, &tenant, Need::Read).await?;
    let campaign = campaigns::get(&app.db, &tenant, campaign_id(&id)?).await?;
    Ok(axum::Json(campaign.into()))
}

/// Changes a draft, at the `version` read. The template and parameters stay once the
/// audience is imported.
#[utoipa::path(patch, path = "/v1/tenants/{tenant}/campaigns/{id}", tag = "campaigns", request_body = CampaignChanges,
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("id" = String, Path, max_length = 64, description = "The campaign's id")),
    responses((status = 200, description = "OK", body = CampaignView),
        Problems, BodyProblems, CampaignProblems))]
async fn update_campaign(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    Json(body): Json<CampaignChanges>,
) -> ApiResult<axum::Json<CampaignView>> {
    let tenant = app.tenant(&caller, &tenant, Need::CampaignsWrite).await?;
    let body = body?;
    let fields = Fields {
        name: body.name,
        template_name: body.template_name,
        template_language: body.template_language,
        parameters: body
            .parameters
            .map(|parameters| parameters.into_iter().map(Into::into).collect()),
        start_at: body.start_at,
        business_hours_only: body.business_hours_only,
    };
    let actor = campaigns::actor(&caller.principal, &tenant);
    let campaign = campaigns::update_draft(
        &app.db,
        &tenant,
        campaign_id(&id)?,
        actor,
        &fields,
        body.version,
        app.now(),
    )
    .await?;
    Ok(axum::Json(campaign.into()))
}

/// Where a campaign's uploads go: a tenant imports only its own campaign's.
fn upload_prefix(tenant: &str, id: &str) -> String {
    format!("uploads/{tenant}/{id}/")
}

/// Imports the draft's audience, once: a list (`recipients`) or an uploaded CSV
/// (`object_key`). Bad rows and duplicates are left out and reported by line; opted-out
/// and erased customers are counted and left out.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/campaigns/{id}/audience", tag = "campaigns", request_body = AudienceBody,
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("id" = String, Path, max_length = 64, description = "The campaign's id")),
    responses((status = 200, description = "Imported", body = AudienceReport),
        Problems, BodyProblems, CampaignProblems))]
async fn import_audience(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    Json(body): Json<AudienceBody>,
) -> ApiResult<axum::Json<AudienceReport>> {
    let tenant = app.tenant(&caller, &tenant, Need::CampaignsWrite).await?;
    let body = body?;
    let id = campaign_id(&id)?;
    let actor = campaigns::actor(&caller.principal, &tenant);
    let campaign = campaigns::get(&app.db, &tenant, id).await?;
    let imported = match (body.recipients, body.object_key) {
        (Some(recipients), None) => {
            if recipients.len() > 5000 {
                return Err(Problem::invalid(
                    "/recipients",
                    "at most 5000: upload a CSV for more",
                ));
            }
            let rows = audience::from_list(&recipients, &campaign.parameters);
            let rows = futures::stream::iter(rows.into_iter().map(Ok));
            campaigns::import_audience(&app.db, &tenant, &campaign, actor, rows, app.now()).await?
        }
        (None, Some(object_key)) => {
            if !object_key.starts_with(&upload_prefix(&tenant, id)) || object_key.len() > 256 {
                return Err(Problem::invalid(
                    "/object_key",
                    "the object_key an upload of this campaign gave",
                ));
            }
            let object = app
                .s3
                .get_object()
                .bucket(&app.campaign_bucket)
                .key(&object_key)
                .send()
                .await
                .map_err(|error| {
                    if error
                        .as_service_error()
                        .is_some_and(|error| error.is_no_such_key())
                    {
                        Problem::invalid(
                            "/object_key",
                            "nothing was uploaded under this key (uploads are kept 7 days)",
                        )
                    } else {
                        tracing::error!(error = %aws_sdk_s3::error::DisplayErrorContext(&error), "an upload could not be read");
                        Problem::unavailable()
                    }
                })?;
            if object.content_length().unwrap_or(0) > MAX_UPLOAD_BYTES {
                return Err(Problem::invalid(
                    "/object_key",
                    format!("the upload is larger than {MAX_UPLOAD_BYTES} bytes"),
                ));
            }
            let reader = tokio_util::io::SyncIoBridge::new(object.body.into_async_read());
            let rows = campaigns::csv_rows(reader, campaign.parameters.clone());
            campaigns::import_audience(&app.db, &tenant, &campaign, actor, rows, app.now()).await?
        }
        _ => {
            return Err(Problem::invalid(
                "",
                "either recipients or object_key, not both",
            ));
        }
    };
    Ok(axum::Json(imported.into()))
}

/// A URL to `PUT` the draft's audience as CSV to (valid 15 minutes; the upload is kept 7
/// days), then `POST .../audience` with its `object_key`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/campaigns/{id}/upload", tag = "campaigns",
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("id" = String, Path, max_length = 64, description = "The campaign's id")),
    responses((status = 200, description = "OK", body = Upload), Problems, CampaignProblems))]
async fn upload_audience(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Upload>> {
    let tenant = app.tenant(&caller, &tenant, Need::CampaignsWrite).await?;
    let campaign = campaigns::get(&app.db, &tenant, campaign_id(&id)?).await?;
    let actor = campaigns::actor(&caller.principal, &tenant);
    shared::campaign::may(actor, &Default::default(), Operation::Import)
        .and_then(|()| shared::campaign::next_state(campaign.state, Operation::Import).map(|_| ()))
        .map_err(|error| match error {
            shared::campaign::CampaignError::Denied(rule) => {
                Problem::forbidden().detail(rule.to_string())
            }
            transition => Problem::conflict(transition.to_string()),
        })?;
    let mut nonce = [0u8; 16];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| Problem::unavailable())?;
    let object_key = format!(
        "{}{}.csv",
        upload_prefix(&tenant, &campaign.id),
        hex::encode(nonce)
    );
    let presigning = PresigningConfig::expires_in(UPLOAD_VALID).expect("15 minutes is valid");
    let request = app
        .s3
        .put_object()
        .bucket(&app.campaign_bucket)
        .key(&object_key)
        .content_type("text/csv")
        .presigned(presigning)
        .await
        .map_err(|error| {
            tracing::error!(error = %aws_sdk_s3::error::DisplayErrorContext(&error), "an upload URL could not be signed");
            Problem::unavailable()
        })?;
    Ok(axum::Json(Upload {
        url: request.uri().to_owned(),
        method: request.method().to_owned(),
        headers: request
            .headers()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect(),
        object_key,
        expires_at: app.now() + chrono::Duration::from_std(UPLOAD_VALID).expect("minutes"),
    }))
}

async fn move_campaign(
    app: &AppState,
    caller: &Caller,
    tenant: &str,
    id: &str,
    need: Need,
    operation: Operation,
    reason: Option<Json<Reason>>,
) -> ApiResult<axum::Json<CampaignView>> {
    let tenant = app.tenant(caller, tenant, need).await?;
    let note = match reason {
        Some(Json(body)) => Note {
            reason: body?.reason,
        },
        None => Note::default(),
    };
    let actor = campaigns::actor(&caller.principal, &tenant);
    let campaign = campaigns::transition(
        &app.db,
        &tenant,
        campaign_id(id)?,
        actor,
        operation,
        &note,
        app.now(),
    )
    .await?;
    Ok(axum::Json(campaign.into()))
}

/// Submits a draft for approval: its template must be APPROVED at WhatsApp and it must
/// have an audience.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/campaigns/{id}/submit", tag = "campaigns",
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("id" = String, Path, max_length = 64, description = "The campaign's id")),
    responses((status = 200, description = "Submitted", body = CampaignView), Problems, CampaignProblems))]
async fn submit_campaign(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<CampaignView>> {
    move_campaign(
        &app,
        &caller,
        &tenant,
        &id,
        Need::CampaignsWrite,
        Operation::Submit,
        None,
    )
    .await
}

/// Approves a submitted campaign (people only, never its author nor the person it was
/// written for): it is scheduled for its `start_at`, or runs now.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/campaigns/{id}/approve", tag = "campaigns",
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("id" = String, Path, max_length = 64, description = "The campaign's id")),
    responses((status = 200, description = "Approved: scheduled or running", body = CampaignView), Problems, CampaignProblems))]
async fn approve_campaign(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<CampaignView>> {
    move_campaign(
        &app,
        &caller,
        &tenant,
        &id,
        Need::Approve,
        Operation::Approve,
        None,
    )
    .await
}

/// Rejects a submitted campaign with a reason (people only, as approval).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/campaigns/{id}/reject", tag = "campaigns", request_body = Reason,
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("id" = String, Path, max_length = 64, description = "The campaign's id")),
    responses((status = 200, description = "Rejected", body = CampaignView), Problems, BodyProblems, CampaignProblems))]
async fn reject_campaign(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    reason: Json<Reason>,
) -> ApiResult<axum::Json<CampaignView>> {
    move_campaign(
        &app,
        &caller,
        &tenant,
        &id,
        Need::Approve,
        Operation::Reject,
        Some(reason),
    )
    .await
}

/// Pauses a running campaign (a supervisor, an admin, or a key with `campaigns:write`).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/campaigns/{id}/pause", tag = "campaigns", request_body = Reason,
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("id" = String, Path, max_length = 64, description = "The campaign's id")),
    responses((status = 200, description = "Paused", body = CampaignView), Problems, BodyProblems, CampaignProblems))]
async fn pause_campaign(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    reason: Json<Reason>,
) -> ApiResult<axum::Json<CampaignView>> {
    move_campaign(
        &app,
        &caller,
        &tenant,
        &id,
        Need::CampaignsWrite,
        Operation::Pause,
        Some(reason),
    )
    .await
}

/// Resumes a paused campaign (people only: a supervisor or an admin).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/campaigns/{id}/resume", tag = "campaigns",
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("id" = String, Path, max_length = 64, description = "The campaign's id")),
    responses((status = 200, description = "Running again", body = CampaignView), Problems, CampaignProblems))]
async fn resume_campaign(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<CampaignView>> {
    move_campaign(
        &app,
        &caller,
        &tenant,
        &id,
        Need::Approve,
        Operation::Resume,
        None,
    )
    .await
}

/// Cancels a campaign that has not ended (a supervisor, an admin, or a key with
/// `campaigns:write`).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/campaigns/{id}/cancel", tag = "campaigns",
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("id" = String, Path, max_length = 64, description = "The campaign's id")),
    responses((status = 200, description = "Cancelled", body = CampaignView), Problems, CampaignProblems))]
async fn cancel_campaign(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<CampaignView>> {
    move_campaign(
        &app,
        &caller,
        &tenant,
        &id,
        Need::CampaignsWrite,
        Operation::Cancel,
        None,
    )
    .await
}

/// The campaign's live report: its audience, and what was sent, delivered, read, failed
/// (by WhatsApp error code), skipped, replied to and opted out of.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/campaigns/{id}/report", tag = "campaigns",
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("id" = String, Path, max_length = 64, description = "The campaign's id")),
    responses((status = 200, description = "OK", body = Report), Problems))]
async fn campaign_report(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Report>> {
    let tenant = app.tenant(&caller, &tenant, Need::Read).await?;
    let campaign = campaigns::get(&app.db, &tenant, campaign_id(&id)?).await?;
    Ok(axum::Json(Report::of(campaign)))
}
