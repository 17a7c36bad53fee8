//! A tenant's conversations (filtered by state, department and start time), one
//! conversation with its transcript, and the human queue per department. Reading needs
//! `read` (any member).

use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::engine::Stage;
use shared::platform::access::Need;
use shared::platform::conversations::{
    self, Conversation, ConversationSummary, DepartmentQueue, Direction, Filter, Message, SlaState,
    WaitingCustomer,
};
use shared::tenant::Priority;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Problems;
use crate::AppState;
use crate::auth::Caller;
use crate::extract::Query;
use crate::page::{PageQuery, next_cursor};
use crate::problem::{ApiResult, Problem};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_conversations))
        .routes(routes!(get_conversation))
        .routes(routes!(get_queue))
}

/// Where a conversation stands: `bot` (menu, flows, AI attendant), `waiting` (in a
/// department's queue), `with_agent` (taken by a person), `closed` (resolved, the NPS
/// question included, or left by the customer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StateName {
    Bot,
    Waiting,
    WithAgent,
    Closed,
}

impl From<StateName> for Stage {
    fn from(state: StateName) -> Self {
        match state {
            StateName::Bot => Stage::Bot,
            StateName::Waiting => Stage::Waiting,
            StateName::WithAgent => Stage::WithAgent,
            StateName::Closed => Stage::Closed,
        }
    }
}

impl From<Stage> for StateName {
    fn from(stage: Stage) -> Self {
        match stage {
            Stage::Bot => StateName::Bot,
            Stage::Waiting => StateName::Waiting,
            Stage::WithAgent => StateName::WithAgent,
            Stage::Closed => StateName::Closed,
        }
    }
}

/// Queue priority: `alta` is served first, then `media`, then `baixa`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PriorityName {
    Alta,
    Media,
    Baixa,
}

impl From<Priority> for PriorityName {
    fn from(priority: Priority) -> Self {
        match priority {
            Priority::Alta => PriorityName::Alta,
            Priority::Media => PriorityName::Media,
            Priority::Baixa => PriorityName::Baixa,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConversationQuery {
    pub state: Option<StateName>,
    /// The department a conversation was handed to (a department's id).
    #[param(max_length = 64)]
    pub department: Option<String>,
    /// Conversations that started at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Conversations that started before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 2048)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationSummaryView {
    /// The customer's WhatsApp id.
    pub customer: String,
    pub started_at: DateTime<Utc>,
    pub state: StateName,
    /// The department it was handed to (absent while with the bot).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
}

impl From<ConversationSummary> for ConversationSummaryView {
    fn from(summary: ConversationSummary) -> Self {
        Self {
            customer: summary.customer,
            started_at: summary.started_at,
            state: summary.state.into(),
            department: summary.department,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationPage {
    pub items: Vec<ConversationSummaryView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DirectionName {
    /// From the customer.
    Inbound,
    /// To the customer, or a business-side event.
    Outbound,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    pub at: DateTime<Utc>,
    pub direction: DirectionName,
    /// `text`, `interactive`, `image`... for messages; the event's kind otherwise.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The WhatsApp message id (the event's id for business-side events).
    pub id: String,
}

impl From<Message> for MessageView {
    fn from(message: Message) -> Self {
        Self {
            at: message.at,
            direction: match message.direction {
                Direction::Inbound => DirectionName::Inbound,
                Direction::Outbound => DirectionName::Outbound,
            },
            kind: message.kind,
            text: message.text,
            id: message.id,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedView {
    pub department: String,
    pub priority: PriorityName,
    pub entered_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationView {
    pub customer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
    pub started_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    pub state: StateName,
    /// The business's name of the exact state (`MENU_PRINCIPAL`, `SUPORTE_PROBLEMA`...).
    pub state_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// While in a department's queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued: Option<QueuedView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nps_score: Option<u8>,
    /// The campaign whose message this conversation answers: it opened while that send's
    /// reply window was open; the campaign's report counts it in `n_replied`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    /// The conversation's messages, oldest first.
    pub messages: Vec<MessageView>,
}

impl From<Conversation> for ConversationView {
    fn from(conversation: Conversation) -> Self {
        Self {
            customer: conversation.customer,
            profile_name: conversation.profile_name,
            started_at: conversation.started_at,
            last_activity_at: conversation.last_activity_at,
            state: conversation.state.into(),
            state_name: conversation.state_name,
            department: conversation.department,
            agent: conversation.agent,
            queued: conversation.queued.map(|queued| QueuedView {
                department: queued.department,
                priority: queued.priority.into(),
                entered_at: queued.entered_at,
            }),
            nps_score: conversation.nps_score,
            campaign_id: conversation.campaign_id,
            messages: conversation
                .messages
                .into_iter()
                .map(MessageView::from)
                .collect(),
        }
    }
}

/// Where a wait stands against the department's SLA.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlaName {
    Ok,
    /// Past `alert_after_minutes`.
    Warning,
    /// Past `max_wait_minutes`.
    Breach,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WaitingView {
    /// 1 for the next to be served.
    pub place: u32,
    pub customer: String,
    pub priority: PriorityName,
    pub entered_at: DateTime<Utc>,
    pub waited_seconds: i64,
    pub sla: SlaName,
}

impl From<WaitingCustomer> for WaitingView {
    fn from(waiting: WaitingCustomer) -> Self {
        Self {
            place: waiting.place,
            customer: waiting.customer,
            priority: waiting.priority.into(),
            entered_at: waiting.entered_at,
            waited_seconds: waiting.waited_seconds,
            sla: match waiting.sla {
                SlaState::Ok => SlaName::Ok,
                SlaState::Warning => SlaName::Warning,
                SlaState::Breach => SlaName::Breach,
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DepartmentQueueView {
    pub department: String,
    pub name: String,
    pub alert_after_minutes: u32,
    pub max_wait_minutes: u32,
    /// First to be served first (priority, then arrival).
    pub waiting: Vec<WaitingView>,
    /// The longest wait in the queue now, whatever its place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_wait_seconds: Option<i64>,
}

impl From<DepartmentQueue> for DepartmentQueueView {
    fn from(queue: DepartmentQueue) -> Self {
        Self {
            department: queue.department,
            name: queue.name,
            alert_after_minutes: queue.alert_after_minutes,
            max_wait_minutes: queue.max_wait_minutes,
            waiting: queue.waiting.into_iter().map(WaitingView::from).collect(),
            oldest_wait_seconds: queue.oldest_wait_seconds,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueView {
    /// Each department of the tenant's configuration, in its order.
    pub departments: Vec<DepartmentQueueView>,
}

/// A customer is a WhatsApp id (digits, or a business-scoped id): anything else cannot exist.
fn customer_id(customer: &str) -> Result<&str, Problem> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if (1..=64).contains(&customer.len()) && customer.bytes().all(allowed) {
        Ok(customer)
    } else {
        Err(Problem::not_found())
    }
}

/// The tenant's conversations, newest first by start time. All filters hold together; a
/// page may be short and still have a next one.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/conversations", tag = "conversations",
    params(("tenant" = String, Path, description = "The tenant's number id"), ConversationQuery),
    responses((status = 200, description = "OK", body = ConversationPage), Problems))]
async fn list_conversations(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Query(query): Query<ConversationQuery>,
) -> ApiResult<axum::Json<ConversationPage>> {
    let tenant = app.tenant(&caller, &tenant, Need::Read).await?;
    let query = query?;
    if query
        .department
        .as_ref()
        .is_some_and(|department| department.is_empty() || department.len() > 64)
    {
        return Err(Problem::invalid("/query/department", "1 to 64 characters"));
    }
    let filter = Filter {
        state: query.state.map(Stage::from),
        department: query.department,
        from: query.from,
        to: query.to,
    };
    // A cursor continues only the list it came from: the same tenant and filters.
    let binding = format!(
        "conversations|{tenant}|{:?}|{:?}|{:?}|{:?}",
        filter.state,
        filter.department,
        filter.from.map(|at| at.timestamp_millis()),
        filter.to.map(|at| at.timestamp_millis()),
    );
    let paging = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    let page = conversations::list(
        &app.db,
        &tenant,
        &filter,
        paging.limit()? as usize,
        paging.start(&app, &binding)?.as_ref(),
        app.now(),
    )
    .await?;
    Ok(axum::Json(ConversationPage {
        next_cursor: next_cursor(&app, &binding, &page),
        items: page
            .items
            .into_iter()
            .map(ConversationSummaryView::from)
            .collect(),
    }))
}

/// The customer's current conversation, with its messages oldest first.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/conversations/{customer}", tag = "conversations",
    params(
        ("tenant" = String, Path, description = "The tenant's number id"),
        ("customer" = String, Path, description = "The customer's WhatsApp id"),
    ),
    responses((status = 200, description = "OK", body = ConversationView), Problems))]
async fn get_conversation(
    State(app): State<AppState>,
    caller: Caller,
    Path((tenant, customer)): Path<(String, String)>,
) -> ApiResult<axum::Json<ConversationView>> {
    let tenant = app.tenant(&caller, &tenant, Need::Read).await?;
    let customer = customer_id(&customer)?;
    conversations::get(&app.db, &tenant, customer, app.now())
        .await?
        .map(|conversation| axum::Json(conversation.into()))
        .ok_or_else(Problem::not_found)
}

/// The human queue of each department: who waits, in the order they will be served, how
/// long, and against the department's SLA.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/queue", tag = "conversations",
    params(("tenant" = String, Path, description = "The tenant's number id")),
    responses((status = 200, description = "OK", body = QueueView), Problems))]
async fn get_queue(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<axum::Json<QueueView>> {
    let tenant = app.tenant(&caller, &tenant, Need::Read).await?;
    let departments = conversations::queue(&app.db, &tenant, app.now()).await?;
    Ok(axum::Json(QueueView {
        departments: departments
            .into_iter()
            .map(DepartmentQueueView::from)
            .collect(),
    }))
}
