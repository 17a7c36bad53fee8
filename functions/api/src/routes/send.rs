//! Sending to a customer (`/v1/tenants/{tenant}/messages`): a text inside the customer's
//! 24 h window, or an approved template any time. Accepted sends are queued for the worker
//! (202 and a tracking id); their status, wamid included, is read by that id.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::envelope::SendContent;
use shared::platform::access::Need;
use shared::platform::send::{self, SendRequest, SendState, SendStatus};
use utoipa::{IntoResponses, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{BodyProblems, Problems};
use crate::AppState;
use crate::auth::Caller;
use crate::extract::Json;
use crate::problem::{ApiResult, Problem, Problem as Body};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send_message))
        .routes(routes!(message_status))
}

const IDEMPOTENCY_KEY: &str = "idempotency-key";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// The customer: a phone number in international form (digits, a leading `+`
    /// optional), or a business-scoped user id as WhatsApp gave it.
    #[schema(
        pattern = r"^(\+?[0-9]{8,15}|[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128})$",
        example = "+5511987654321"
    )]
    pub customer: String,
    pub content: Content,
}

/// A text (inside the 24 h window only) or an approved template (any time).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Content {
    Text(Text),
    Template(Template),
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Text {
    /// Not blank.
    #[schema(min_length = 1, max_length = 4096, pattern = r"\S")]
    pub body: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// The approved template's name.
    #[schema(pattern = "^[a-z0-9_]{1,512}$", example = "pedido_pronto")]
    pub name: String,
    /// Its language code.
    #[schema(pattern = "^[a-z]{2,3}(_[A-Za-z]{2,4})?$", example = "pt_BR")]
    pub language: String,
    /// The Graph API's template components (header, body and button parameters), sent
    /// as given.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub components: Vec<Component>,
}

/// A Graph API template component: its `type` and Graph's own fields.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Component {
    #[serde(rename = "type")]
    #[schema(min_length = 1, example = "body")]
    pub kind: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl From<Content> for SendContent {
    fn from(content: Content) -> Self {
        match content {
            Content::Text(text) => SendContent::Text { body: text.body },
            Content::Template(template) => SendContent::Template {
                name: template.name,
                language: template.language,
                components: template
                    .components
                    .into_iter()
                    .map(|component| {
                        let mut object = component.rest;
                        object.insert("type".into(), serde_json::Value::String(component.kind));
                        serde_json::Value::Object(object)
                    })
                    .collect(),
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// The tracking id: `GET .../messages/{id}` reads where the send stands.
    pub id: String,
    /// As WhatsApp knows the customer (digits only).
    pub customer: String,
    pub requested_at: DateTime<Utc>,
    pub status: Status,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Accepted, not sent yet.
    Queued,
    /// WhatsApp took it (`wamid`).
    Sent,
    Delivered,
    Read,
    /// Not delivered (`error_codes`: WhatsApp's, when it gave them).
    Failed,
    /// Not sent: the 24 h window had closed when it was handled (`reason`).
    Refused,
}

impl From<SendState> for Status {
    fn from(state: SendState) -> Self {
        match state {
            SendState::Queued => Status::Queued,
            SendState::Sent => Status::Sent,
            SendState::Delivered => Status::Delivered,
            SendState::Read => Status::Read,
            SendState::Failed => Status::Failed,
            SendState::Refused => Status::Refused,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageStatus {
    pub id: String,
    pub customer: String,
    pub requested_at: DateTime<Utc>,
    pub status: Status,
    /// WhatsApp's message id, once sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wamid: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_codes: Vec<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<SendStatus> for MessageStatus {
    fn from(status: SendStatus) -> Self {
        Self {
            id: status.id,
            customer: status.customer,
            requested_at: status.requested_at,
            status: status.status.into(),
            wamid: status.wamid,
            error_codes: status.error_codes,
            reason: status.reason,
        }
    }
}

/// The answers of a send besides [`Problems`].
#[derive(IntoResponses)]
#[allow(dead_code)] // only read by the OpenAPI derive
pub enum SendProblems {
    /// The Idempotency-Key was used with another request.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Body),
    /// A text outside the customer's 24 h window: only a template can be sent.
    #[response(status = 422, content_type = "application/problem+json")]
    Refused(Body),
}

/// Sends a text (inside the customer's 24 h window) or an approved template. The send is
/// queued for the conversation and made once; repeat a request with the same
/// `Idempotency-Key` to get the same answer.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/messages", tag = "messages", request_body = NewMessage,
    params(
        ("tenant" = String, Path, description = "The tenant's number id"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[ -~]*[!-~][ -~]*$",
            description = "The same key and body: the same send, made once (kept 8 days)"),
    ),
    responses(
        (status = 202, description = "Accepted: queued for sending", body = Accepted,
            headers(("Location" = String, description = "Where its status is read"))),
        Problems, BodyProblems, SendProblems,
    ))]
async fn send_message(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Json(body): Json<NewMessage>,
) -> ApiResult<Response> {
    let tenant = app.tenant(&caller, &tenant, Need::Send).await?;
    let body = body?;
    let idempotency_key = match headers.get(IDEMPOTENCY_KEY) {
        Some(value) => Some(value.to_str().map_err(|_| {
            Problem::invalid("/header/idempotency-key", "printable ASCII characters")
        })?),
        None => None,
    };
    let content = SendContent::from(body.content);
    let request = SendRequest {
        tenant: &tenant,
        customer: &body.customer,
        content: &content,
        principal: &caller.id(),
        idempotency_key,
    };
    let tracking =
        send::request_send(&app.db, &app.sqs, &app.queue_url, &request, app.now()).await?;
    let location = format!("/v1/tenants/{tenant}/messages/{}", tracking.id);
    let accepted = Accepted {
        id: tracking.id,
        customer: tracking.customer,
        requested_at: tracking.requested_at,
        status: Status::Queued,
    };
    let mut response = (StatusCode::ACCEPTED, axum::Json(accepted)).into_response();
    response.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&location).expect("ids and tenants are ASCII"),
    );
    Ok(response)
}

/// Where a send stands: queued, sent (with its wamid), delivered, read, failed (with
/// WhatsApp's error codes) or refused (with the reason).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/messages/{id}", tag = "messages",
    params(
        ("tenant" = String, Path, description = "The tenant's number id"),
        ("id" = String, Path, max_length = 64, description = "The tracking id of the send"),
    ),
    responses((status = 200, description = "OK", body = MessageStatus), Problems))]
async fn message_status(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<MessageStatus>> {
    let tenant = app.tenant(&caller, &tenant, Need::Read).await?;
    match send::send_status(&app.db, &tenant, &id).await? {
        Some(status) => Ok(axum::Json(status.into())),
        None => Err(Problem::not_found()),
    }
}
