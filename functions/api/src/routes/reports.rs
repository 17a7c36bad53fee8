//! A tenant's daily reports: `shared::platform::reports::daily`, as `ops report` prints it.

use axum::extract::{Path, State};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use shared::platform::access::Need;
use shared::platform::reports;
use shared::report::{self, DayReport};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Problems;
use crate::AppState;
use crate::auth::Caller;
use crate::extract::Query;
use crate::problem::ApiResult;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(daily_reports))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DailyQuery {
    /// The first day, `YYYY-MM-DD` (the tenant's local date).
    #[param(format = Date, max_length = 10)]
    pub from: String,
    /// The last day, `YYYY-MM-DD`: at most 92 days from `from`, not before it.
    #[param(format = Date, max_length = 10)]
    pub to: String,
}

/// Every day of the range, in order; a day nothing happened on reads as zeros.
#[derive(Debug, Serialize, ToSchema)]
pub struct DailyReports {
    pub days: Vec<Day>,
}

/// One day of the tenant, counted when things happened (the tenant's time zone).
#[derive(Debug, Serialize, ToSchema)]
pub struct Day {
    pub date: NaiveDate,
    pub conversations: Conversations,
    pub ai: Ai,
    /// A new conversation's first message to the bot's reply (no maximum kept).
    pub bot_first_response: Timing,
    /// A handed-over conversation's first message to an agent's first reply.
    pub agent_first_response: Timing,
    /// Entering the human queue to an agent taking the conversation.
    pub queue_wait: Timing,
    pub sla: Sla,
    pub nps: Nps,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Conversations {
    /// Started by a customer's message.
    pub started: u64,
    /// Reached the NPS question or closed without a person.
    pub bot_only: u64,
    /// Handed to a person (the queue, or an agent writing in).
    pub handed_over: u64,
    /// Resolved by an agent.
    pub resolved: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ai {
    /// The attendant's answers (replies, handoffs and failures).
    pub turns: u64,
    pub requests: u64,
    pub input_tokens: u64,
    pub cache_write_tokens: u64,
    pub cache_read_tokens: u64,
    pub output_tokens: u64,
    /// At the list price of the tenant's model when each turn happened.
    pub cost_usd: f64,
    /// Turns of a model without a known price: their cost is missing from `cost_usd`.
    pub unpriced_turns: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Timing {
    pub count: u64,
    pub sum_seconds: u64,
    /// Null while `count` is 0.
    pub average_seconds: Option<f64>,
    /// Null where no maximum is kept or nothing was measured.
    pub max_seconds: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Sla {
    pub warnings: u64,
    pub breaches: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Nps {
    pub answers: u64,
    pub sum: u64,
    /// Null while nobody answered.
    pub average: Option<f64>,
    /// Promoters (9-10) minus detractors (0-6), in percent of the answers.
    pub score: Option<f64>,
    /// Answers per score, 0 to 10 (eleven numbers).
    #[schema(min_items = 11, max_items = 11)]
    pub distribution: Vec<u64>,
}

fn timing(timing: report::Timing) -> Timing {
    Timing {
        count: timing.count,
        sum_seconds: timing.sum_seconds,
        average_seconds: timing.average_seconds,
        max_seconds: timing.max_seconds,
    }
}

impl From<DayReport> for Day {
    fn from(day: DayReport) -> Self {
        let c = day.conversations;
        let ai = day.ai;
        Day {
            date: day.date,
            conversations: Conversations {
                started: c.started,
                bot_only: c.bot_only,
                handed_over: c.handed_over,
                resolved: c.resolved,
            },
            ai: Ai {
                turns: ai.turns,
                requests: ai.requests,
                input_tokens: ai.input_tokens,
                cache_write_tokens: ai.cache_write_tokens,
                cache_read_tokens: ai.cache_read_tokens,
                output_tokens: ai.output_tokens,
                cost_usd: ai.cost_usd,
                unpriced_turns: ai.unpriced_turns,
            },
            bot_first_response: timing(day.bot_first_response),
            agent_first_response: timing(day.agent_first_response),
            queue_wait: timing(day.queue_wait),
            sla: Sla {
                warnings: day.sla.warnings,
                breaches: day.sla.breaches,
            },
            nps: Nps {
                answers: day.nps.answers,
                sum: day.nps.sum,
                average: day.nps.average,
                score: day.nps.score,
                distribution: day.nps.distribution.to_vec(),
            },
        }
    }
}

/// The tenant's daily reports from `from` to `to`.
///
/// Per day: conversations started, answered by the bot alone, handed over and resolved; AI
/// turns, tokens and cost; first-response and waiting times; SLA warnings and breaches; NPS
/// answers, average, score and distribution.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/reports/daily", tag = "reports",
    params(("tenant" = String, Path, description = "The tenant's number id"), DailyQuery),
    responses((status = 200, description = "OK", body = DailyReports), Problems))]
async fn daily_reports(
    State(app): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Query(query): Query<DailyQuery>,
) -> ApiResult<axum::Json<DailyReports>> {
    let tenant = app.tenant(&caller, &tenant, Need::Read).await?;
    let query = query?;
    let from = reports::parse_date("from", &query.from)?;
    let to = reports::parse_date("to", &query.to)?;
    let days = reports::daily(&app.db, &tenant, from, to).await?;
    Ok(axum::Json(DailyReports {
        days: days.into_iter().map(Day::from).collect(),
    }))
}
