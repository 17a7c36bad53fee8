//! Event subscriptions (`/v1/tenants/{tenant}/hooks`): where the tenant's events are
//! delivered (n8n, Typebot, its own systems), which events, and the signing secret, shown
//! once when made (create, rotate) and never readable again. Reading shows each
//! subscription's delivery health, never its secret.
//!
//! Who: tenant admins, keys with `hooks:manage` (or `admin`), and the provider's keys with
//! either scope; reading too, since a subscriber's URL may carry its own token. Another
//! tenant's subscription is not found.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::hooks::dynamodb::recent_deliveries;
use shared::hooks::{DeliveryEntry, EventType};
use shared::platform::PlatformError;
use shared::platform::access::Need;
use shared::platform::hooks::{self, Fields, Hook, WithSecret};
use utoipa::{IntoResponses, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::campaigns::present;
use super::{BodyProblems, Problems};
use crate::AppState;
use crate::auth::Caller;
use crate::extract::Json;
use crate::problem::{ApiResult, Problem as Body};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_hooks, create_hook))
        .routes(routes!(get_hook, update_hook, delete_hook))
        .routes(routes!(rotate_hook_secret))
        .routes(routes!(list_deliveries))
}

/// Delivery attempts shown, newest first: the log keeps 7 days.
const RECENT_DELIVERIES: usize = 50;

/// An event type: what a subscription lists and an event's `type` (docs/hooks.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum EventTypeName {
    #[serde(rename = "message.received")]
    MessageReceived,
    #[serde(rename = "message.sent")]
    MessageSent,
    #[serde(rename = "message.status")]
    MessageStatus,
    #[serde(rename = "conversation.started")]
    ConversationStarted,
    #[serde(rename = "conversation.handed_over")]
    ConversationHandedOver,
    #[serde(rename = "conversation.assigned")]
    ConversationAssigned,
    #[serde(rename = "conversation.closed")]
    ConversationClosed,
    #[serde(rename = "nps.answered")]
    NpsAnswered,
    #[serde(rename = "customer.opted_out")]
    CustomerOptedOut,
    #[serde(rename = "customer.opted_in")]
    CustomerOptedIn,
    #[serde(rename = "campaign.state_changed")]
    CampaignStateChanged,
}

impl From<EventType> for EventTypeName {
    fn from(event: EventType) -> Self {
        match event {
            EventType::MessageReceived => EventTypeName::MessageReceived,
            EventType::MessageSent => EventTypeName::MessageSent,
            EventType::MessageStatus => EventTypeName::MessageStatus,
            EventType::ConversationStarted => EventTypeName::ConversationStarted,
            EventType::ConversationHandedOver => EventTypeName::ConversationHandedOver,
            EventType::ConversationAssigned => EventTypeName::ConversationAssigned,
            EventType::ConversationClosed => EventTypeName::ConversationClosed,
            EventType::NpsAnswered => EventTypeName::NpsAnswered,
            EventType::CustomerOptedOut => EventTypeName::CustomerOptedOut,
            EventType::CustomerOptedIn => EventTypeName::CustomerOptedIn,
            EventType::CampaignStateChanged => EventTypeName::CampaignStateChanged,
        }
    }
}

/// A new subscription.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHook {
    /// Where events are posted: https, no user name or password, and a host that is not a
    /// private, loopback or link-local address (checked again, after resolving, at every
    /// delivery).
    #[schema(
        max_length = 2048,
        pattern = "^https://",
        example = "https://n8n.example.com/webhook/6f1c2a9e"
    )]
    pub url: String,
    /// The event types delivered: at least one, each once.
    #[schema(value_type = std::collections::BTreeSet<EventTypeName>, min_items = 1)]
    pub events: Vec<String>,
    /// What it is for, at most 200 characters.
    #[schema(max_length = 200, example = "CRM sync")]
    pub description: Option<String>,
    /// `false` makes it disabled (default `true`).
    pub enabled: Option<bool>,
}

/// Changes of a subscription: only the fields given change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HookChanges {
    #[schema(max_length = 2048, pattern = "^https://")]
    pub url: Option<String>,
    #[schema(value_type = Option<std::collections::BTreeSet<EventTypeName>>, min_items = 1)]
    pub events: Option<Vec<String>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub description: Option<Option<String>>,
    /// `false` stops deliveries; `true` starts them again, clearing why it was disabled and
    /// since when it failed.
    pub enabled: Option<bool>,
}

/// A subscription with its delivery health (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct HookView {
    /// `hook_` and 20 characters.
    pub id: String,
    pub url: String,
    pub events: Vec<EventTypeName>,
    pub enabled: bool,
    pub description: Option<String>,
    /// Why it is disabled: a person's choice, or failing for days.
    pub disabled_reason: Option<String>,
    /// `key:<id>`, `person:<sub>` or `ops:<user>`.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// Since when every delivery failed (null while deliveries succeed).
    pub failing_since: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    /// What the last failed delivery met (a status, a timeout).
    pub last_error: Option<String>,
}

impl From<Hook> for HookView {
    fn from(hook: Hook) -> Self {
        let subscription = hook.subscription;
        Self {
            id: subscription.id,
            url: subscription.url,
            events: subscription.events.into_iter().map(Into::into).collect(),
            enabled: subscription.enabled,
            description: subscription.description,
            disabled_reason: subscription.disabled_reason,
            created_by: subscription.created_by,
            created_at: subscription.created_at,
            failing_since: hook.failing_since,
            last_success_at: hook.last_success_at,
            last_failure_at: hook.last_failure_at,
            last_error: hook.last_error,
        }
    }
}

/// A subscription with its new signing secret: shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct HookWithSecret {
    /// `whsec_` and 43 characters: the HMAC-SHA256 key of `X-Hook-Signature`.
    pub secret: String,
    #[serde(flatten)]
    pub hook: HookView,
}

impl From<WithSecret> for HookWithSecret {
    fn from(made: WithSecret) -> Self {
        Self {
            secret: made.secret,
            hook: made.hook.into(),
        }
    }
}

/// One delivery attempt: no customer data, never the subscriber's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub at: DateTime<Utc>,
    /// The event's id (`evt_...`), as the subscriber received it in `X-Hook-Event-Id`.
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: EventTypeName,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// `delivered`, `failed` (tried again later), `gave_up` or `dropped` (the subscription
    /// disabled or deleted meanwhile, or the customer erased).
    #[schema(example = "failed")]
    pub outcome: String,
    /// The subscriber's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why it failed, short: `status 500`, `timeout`, `connect`, `address refused`...
    pub error: Option<String>,
    /// How long the request took, when one was made.
    pub ms: Option<u64>,
}

impl From<DeliveryEntry> for DeliveryView {
    fn from(entry: DeliveryEntry) -> Self {
        Self {
            at: entry.at,
            event_id: entry.event_id,
            event_type: entry.event_type.into(),
            attempt: entry.attempt,
            outcome: serde_json::to_value(entry.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            status: entry.status,
            error: entry.error,
            ms: entry.ms,
        }
    }
}

/// A subscription's recent delivery attempts, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub items: Vec<DeliveryView>,
}

/// The tenant's subscriptions (at most 10: one page).
#[derive(Debug, Serialize, ToSchema)]
pub struct HookList {
    pub items: Vec<HookView>,
}

/// Problems of the subscription routes, besides [`Problems`].
#[derive(IntoResponses)]
#[allow(dead_code)] // only read by the OpenAPI derive
pub enum HookProblems {
    /// Changed by someone else meanwhile: read it again.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Body),
    /// The tenant has 10 subscriptions already.
    #[response(status = 422, content_type = "application/problem+json")]
    Refused(Body),
}

/// The tenant's subscriptions, oldest first, with their delivery health.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/hooks", tag = "hooks",
    params(("tenant" = String, Path, description = "The tenant's number id")),
    responses((status = 200, description = "OK", body = HookList), Problems))]
async fn list_hooks(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<axum::Json<HookList>> {
    let tenant = app.tenant(&caller, &tenant, Need::HooksManage).await?;
    let hooks = hooks::list(&app.db, &tenant).await?;
    Ok(axum::Json(HookList {
        items: hooks.into_iter().map(HookView::from).collect(),
    }))
}

/// Subscribes a URL to event types; the answer holds the signing secret, shown this once.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/hooks", tag = "hooks", request_body = NewHook,
    params(("tenant" = String, Path, description = "The tenant's number id")),
    responses((status = 201, description = "Created: the secret is shown this once", body = HookWithSecret),
        Problems, BodyProblems, HookProblems))]
async fn create_hook(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Json(body): Json<NewHook>,
) -> ApiResult<(StatusCode, axum::Json<HookWithSecret>)> {
    let tenant = app.tenant(&caller, &tenant, Need::HooksManage).await?;
    let body = body?;
    let fields = Fields {
        url: Some(body.url),
        events: Some(body.events),
        description: Some(body.description),
        enabled: body.enabled,
    };
    let made = hooks::create(
        &app.db,
        &app.hook_secrets,
        &tenant,
        &fields,
        &caller.id(),
        app.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(made.into())))
}

/// One subscription with its delivery health.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/hooks/{hook_id}", tag = "hooks",
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("hook_id" = String, Path, max_length = 64, description = "The subscription's id")),
    responses((status = 200, description = "OK", body = HookView), Problems))]
async fn get_hook(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, hook_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<HookView>> {
    let tenant = app.tenant(&caller, &tenant, Need::HooksManage).await?;
    let hook = hooks::get(&app.db, &tenant, &hook_id).await?;
    Ok(axum::Json(hook.into()))
}

/// Changes the URL, the events, the description, or whether it is enabled.
#[utoipa::path(patch, path = "/v1/tenants/{tenant}/hooks/{hook_id}", tag = "hooks", request_body = HookChanges,
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("hook_id" = String, Path, max_length = 64, description = "The subscription's id")),
    responses((status = 200, description = "OK", body = HookView), Problems, BodyProblems, HookProblems))]
async fn update_hook(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, hook_id)): Path<(String, String)>,
    Json(body): Json<HookChanges>,
) -> ApiResult<axum::Json<HookView>> {
    let tenant = app.tenant(&caller, &tenant, Need::HooksManage).await?;
    let body = body?;
    let fields = Fields {
        url: body.url,
        events: body.events,
        description: body.description,
        enabled: body.enabled,
    };
    let hook = hooks::update(&app.db, &tenant, &hook_id, &fields, &caller.id(), app.now()).await?;
    Ok(axum::Json(hook.into()))
}

/// Deletes the subscription and its secret; events already queued for it are dropped.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/hooks/{hook_id}", tag = "hooks",
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("hook_id" = String, Path, max_length = 64, description = "The subscription's id")),
    responses((status = 200, description = "Deleted: what it was", body = HookView), Problems, HookProblems))]
async fn delete_hook(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, hook_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<HookView>> {
    let tenant = app.tenant(&caller, &tenant, Need::HooksManage).await?;
    let hook = hooks::delete(
        &app.db,
        &app.hook_secrets,
        &tenant,
        &hook_id,
        &caller.id(),
        app.now(),
    )
    .await?;
    Ok(axum::Json(hook.into()))
}

/// A new signing secret, shown this once; the old one stops signing at once.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/hooks/{hook_id}/rotate-secret", tag = "hooks",
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("hook_id" = String, Path, max_length = 64, description = "The subscription's id")),
    responses((status = 200, description = "The new secret, shown this once", body = HookWithSecret),
        Problems, HookProblems))]
async fn rotate_hook_secret(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, hook_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<HookWithSecret>> {
    let tenant = app.tenant(&caller, &tenant, Need::HooksManage).await?;
    let made = hooks::rotate_secret(
        &app.db,
        &app.hook_secrets,
        &tenant,
        &hook_id,
        &caller.id(),
        app.now(),
    )
    .await?;
    Ok(axum::Json(made.into()))
}

/// The subscription's last 50 delivery attempts (7 days kept), newest first.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/hooks/{hook_id}/deliveries", tag = "hooks",
    params(("tenant" = String, Path, description = "The tenant's number id"),
        ("hook_id" = String, Path, max_length = 64, description = "The subscription's id")),
    responses((status = 200, description = "OK", body = DeliveryList), Problems))]
async fn list_deliveries(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, hook_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<DeliveryList>> {
    let tenant = app.tenant(&caller, &tenant, Need::HooksManage).await?;
    // Another tenant's (or no) subscription is not found before any log is read.
    hooks::get(&app.db, &tenant, &hook_id).await?;
    let entries = recent_deliveries(
        &app.db.client,
        &app.db.table,
        &tenant,
        &hook_id,
        RECENT_DELIVERIES,
    )
    .await
    .map_err(|error| PlatformError::Database(error.to_string()))?;
    Ok(axum::Json(DeliveryList {
        items: entries.into_iter().map(Into::into).collect(),
    }))
}
