//! The customer's data rights (LGPD): the export of everything stored about a customer,
//! and its erasure, carried out by the worker and read back by its tracking id. The same
//! functions serve `ops customers`. Tenant admins only (keys with `admin`).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::platform::access::Need;
use shared::platform::rights::{self, CustomerExport, ErasureProgress, ErasureStatus};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Problems;
use crate::AppState;
use crate::auth::Caller;
use crate::problem::{ApiResult, Problem};

/// The longest `Idempotency-Key` taken.
const MAX_IDEMPOTENCY_KEY: usize = 255;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export_customer))
        .routes(routes!(request_erasure))
        .routes(routes!(erasure_status))
}

/// Everything stored about one customer, item by item as stored (attributes that hold JSON
/// shown as JSON); expired items are left out.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerExportView {
    pub phone_number_id: String,
    pub customer: String,
    pub exported_at: DateTime<Utc>,
    /// The conversation's state.
    #[schema(value_type = Option<Object>)]
    pub session: Option<serde_json::Value>,
    /// One per event of the conversation: what the customer wrote, what was done and sent.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
    /// Items earlier versions kept in the conversation.
    #[schema(value_type = Vec<Object>)]
    pub legacy: Vec<serde_json::Value>,
    /// The desk (Chatwoot) contact and conversation of the last handoff.
    #[schema(value_type = Option<Object>)]
    pub desk_link: Option<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    pub queue_entries: Vec<serde_json::Value>,
    /// When agents took the customer.
    #[schema(value_type = Vec<Object>)]
    pub taken: Vec<serde_json::Value>,
    /// Owed a follow-up at the next opening.
    #[schema(value_type = Option<Object>)]
    pub opening: Option<serde_json::Value>,
    /// The AI attendant's spend on the customer's conversations.
    #[schema(value_type = Vec<Object>)]
    pub ai_usage: Vec<serde_json::Value>,
    /// Messages kept while the number had no tenant.
    #[schema(value_type = Vec<Object>)]
    pub parked: Vec<serde_json::Value>,
    /// Delivery statuses of the messages sent to the customer.
    #[schema(value_type = Vec<Object>)]
    pub deliveries: Vec<serde_json::Value>,
    /// Sends to the customer requested through the API.
    #[schema(value_type = Vec<Object>)]
    pub sends: Vec<serde_json::Value>,
}

impl From<CustomerExport> for CustomerExportView {
    fn from(export: CustomerExport) -> Self {
        let CustomerExport {
            phone_number_id,
            customer,
            exported_at,
            session,
            events,
            legacy,
            desk_link,
            queue_entries,
            taken,
            opening,
            ai_usage,
            parked,
            deliveries,
            sends,
        } = export;
        Self {
            phone_number_id,
            customer,
            exported_at,
            session,
            events,
            legacy,
            desk_link,
            queue_entries,
            taken,
            opening,
            ai_usage,
            parked,
            deliveries,
            sends,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErasureState {
    Pending,
    Done,
}

/// An erasure accepted: the worker carries it out; its state is at `Location`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureAccepted {
    /// The tracking id, `era_` and 26 hex characters.
    pub id: String,
    pub state: ErasureState,
}

/// An erasure's state; the customer appears nowhere (the request is recorded by hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureView {
    pub id: String,
    pub state: ErasureState,
    pub requested_at: DateTime<Utc>,
    /// `key:<id>`, `person:<sub>` or `ops:<login>`.
    pub requested_by: String,
    pub done_at: Option<DateTime<Utc>>,
    /// Items removed per kind (`session`, `event`, `desk_link`, `queue_entry`, `taken`,
    /// `opening`, `ai_usage`, `parked`, `delivery`, `tracking`), once done.
    pub removed: std::collections::BTreeMap<String, u64>,
    /// `deleted`, `not_found`, `no_desk`, or `refused` (delete the contact in Chatwoot), once done.
    pub desk_contact: Option<String>,
}

impl From<ErasureStatus> for ErasureView {
    fn from(status: ErasureStatus) -> Self {
        Self {
            id: status.id,
            state: match status.state {
                ErasureProgress::Pending => ErasureState::Pending,
                ErasureProgress::Done => ErasureState::Done,
            },
            requested_at: status.requested_at,
            requested_by: status.requested_by,
            done_at: status.done_at,
            removed: status.removed,
            desk_contact: status.desk_contact,
        }
    }
}

/// The customer path parameter, as Meta names customers.
pub(crate) fn customer_id(customer: &str) -> Result<&str, Problem> {
    rights::check_customer(customer).map_err(|error| match error {
        shared::platform::PlatformError::Invalid { detail, .. } => {
            Problem::invalid("/path/customer", detail)
        }
        other => other.into(),
    })?;
    Ok(customer)
}

/// The optional `Idempotency-Key`: printable ASCII, at most 255 characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, Problem> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key)
            if (1..=MAX_IDEMPOTENCY_KEY).contains(&key.len())
                && key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(key))
        }
        _ => Err(Problem::invalid(
            "/header/idempotency-key",
            format!("1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters without spaces"),
        )),
    }
}

/// Everything stored about the customer (recorded in the audit log by the customer's hash).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/customers/{customer}/export", tag = "data rights",
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("customer" = String, Path, description = "The customer's WhatsApp id (the number in digits)", max_length = 128)),
    responses((status = 200, description = "OK", body = CustomerExportView), Problems))]
async fn export_customer(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, customer)): Path<(String, String)>,
) -> ApiResult<axum::Json<CustomerExportView>> {
    let tenant = app.tenant(&caller, &tenant, Need::Admin).await?;
    let customer = customer_id(&customer)?;
    let export = rights::export(&app.db, &tenant, customer, &caller.id()).await?;
    Ok(axum::Json(export.into()))
}

/// Erases everything stored about the customer, and the customer's desk contact. The
/// worker carries it out in the customer's conversation order; read its state at
/// `Location`. With an `Idempotency-Key`, a repeat answers the same id; the key reused
/// for another customer is a conflict.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/customers/{customer}/erasure", tag = "data rights",
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("customer" = String, Path, description = "The customer's WhatsApp id (the number in digits)", max_length = 128),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request answer the same erasure", max_length = 255)),
    responses((status = 202, description = "Accepted: the erasure is under way", body = ErasureAccepted,
            headers(("Location" = String, description = "The erasure's state"))),
        (status = 409, description = "The Idempotency-Key was used for another customer", body = Problem, content_type = "application/problem+json"),
        Problems))]
async fn request_erasure(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, customer)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<(StatusCode, HeaderMap, axum::Json<ErasureAccepted>)> {
    let tenant = app.tenant(&caller, &tenant, Need::Admin).await?;
    let customer = customer_id(&customer)?;
    let key = idempotency_key(&headers)?;
    let id = rights::request_erase(
        &app.db,
        &app.sqs,
        &app.queue_url,
        &tenant,
        customer,
        &caller.id(),
        key,
    )
    .await?;
    let mut answer = HeaderMap::new();
    let location = format!("/v1/tenants/{tenant}/erasures/{id}");
    answer.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).expect("digits and hex"),
    );
    Ok((
        StatusCode::ACCEPTED,
        answer,
        axum::Json(ErasureAccepted {
            id,
            state: ErasureState::Pending,
        }),
    ))
}

/// An erasure's state: pending, or done with what it removed.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/erasures/{id}", tag = "data rights",
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("id" = String, Path, description = "The erasure's tracking id", max_length = 64)),
    responses((status = 200, description = "OK", body = ErasureView), Problems))]
async fn erasure_status(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<ErasureView>> {
    let tenant = app.tenant(&caller, &tenant, Need::Admin).await?;
    match rights::erasure_status(&app.db, &tenant, &id).await? {
        Some(status) => Ok(axum::Json(status.into())),
        None => Err(Problem::not_found()),
    }
}
