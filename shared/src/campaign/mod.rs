//! Campaigns: one approved template sent to a list of customers. The lifecycle (states, and
//! who may move a campaign along them) is re-exported here, [`audience`] parses audiences;
//! this module holds the sending side: the queue's batch message, the items the sender
//! reads and writes, its ports (the campaign store, the shared pacer, the campaign queue)
//! and the logic of a batch ([`sender`]) and of the dispatcher ([`dispatch`]). Pure apart from the ports;
//! the DynamoDB and SQS adapters sit beside it behind their features.
//!
//! | item | pk | sk |
//! | --- | --- | --- |
//! | campaign (`state`, `version`, template, counters `n_*`, `started_at`) | `CAMPAIGN#<pn>` | `C#<id>` |
//! | recipient (`customer`, `params`, `state`, `wamid`, `error_code`, `attempts`, `delivery`) | `CAMPAIGN#<pn>#<id>` | `R#<seq, 8 digits>` |
//! | a campaign due to start (`phone_number_id`, `campaign_id`) | `CAMPAIGNS_DUE` | `<start epoch s, 10 digits>#<pn>#<id>` |
//! | opt-out (`since`, `source`) | `OPTOUT#<pn>` | sha256 hex of `<pn>:<customer>` |
//! | the send a customer's next conversation answers (`campaign_id`, `seq`, `sent_at`, `expires_at`; `replied_at`, `opted_out_at`) | `CAMPAIGN_REPLY#<pn>` | sha256 hex of `<pn>:<customer>` |
//! | WABA signals (`status`/`quality_event`/`event`, `at`) | `WABA#<waba>` | `TEMPLATE#<name>#<lang>`, `NUMBER#<pn>`, `ACCOUNT` |
//! | send tokens of a 100 ms slot (`n`) | `PACE#<pn>` | `S#<slot>` |
//! | a number's slow-down after 130429 (`factor`, `until`) | `PACE#<pn>` | `SLOWDOWN` |
//! | recipients counted toward the messaging limit in an hour (`n`) | `DAILY#<portfolio>` | `H#<hours since epoch>` |

pub mod audience;
pub mod dispatch;
mod lifecycle;
pub mod outcome;
pub mod pacing;
pub mod sender;

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "sqs")]
pub mod sqs;

#[cfg(any(test, feature = "testing"))]
pub mod memory;

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::store::{StoreError, status_rank};
use pacing::Slowdown;

pub use lifecycle::*;

/// Recipients per batch message.
pub const BATCH_SIZE: u32 = 50;
/// Sends looked at by the failure-rate pause.
pub const FAILURE_WINDOW: u64 = 200;

/// The campaign queue's message: one batch of consecutive recipients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMessage {
    pub v: u32,
    pub batch: Batch,
}

/// Recipients `from_seq..=to_seq` of one campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub phone_number_id: String,
    pub campaign_id: String,
    pub from_seq: u32,
    pub to_seq: u32,
}

impl Batch {
    pub fn to_json(&self) -> String {
        let message = BatchMessage {
            v: 1,
            batch: self.clone(),
        };
        serde_json::to_string(&message).expect("a batch serialises")
    }

    /// A version this code does not know is refused, never guessed at.
    pub fn from_json(body: &str) -> Result<Batch, String> {
        let message: BatchMessage =
            serde_json::from_str(body).map_err(|e| format!("not a batch message: {e}"))?;
        match message.v {
            1 => Ok(message.batch),
            v => Err(format!("unknown batch message version {v}")),
        }
    }

    /// Batches of [`BATCH_SIZE`] covering `1..=audience_size`.
    pub fn cover(phone_number_id: &str, campaign_id: &str, audience_size: u32) -> Vec<Batch> {
        (1..=audience_size)
            .step_by(BATCH_SIZE as usize)
            .map(|from_seq| Batch {
                phone_number_id: phone_number_id.to_owned(),
                campaign_id: campaign_id.to_owned(),
                from_seq,
                to_seq: (from_seq + BATCH_SIZE - 1).min(audience_size),
            })
            .collect()
    }
}

/// What the sender and the dispatcher read of a campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    pub phone_number_id: String,
    pub id: String,
    pub state: State,
    pub version: u64,
    pub template_name: String,
    pub template_language: String,
    pub start_at: Option<DateTime<Utc>>,
    pub business_hours_only: bool,
    /// When the dispatcher moved it to `running` (signals older than this do not pause it).
    pub started_at: Option<DateTime<Utc>>,
    pub audience_size: u32,
    pub counters: Counters,
}

/// The counters the sender reads back (the rest are only added to).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub queued: u64,
    /// Recipients with a final outcome (sent, failed or skipped), the campaign is done
    /// when it reaches `queued`.
    pub done: u64,
    pub failed: u64,
    /// `done` and `failed` when the failure-rate window last started.
    pub window_done: u64,
    pub window_failed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientState {
    Pending,
    Sending,
    Sent,
    Failed,
    Skipped,
}

impl RecipientState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientState::Pending => "pending",
            RecipientState::Sending => "sending",
            RecipientState::Sent => "sent",
            RecipientState::Failed => "failed",
            RecipientState::Skipped => "skipped",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub seq: u32,
    /// Digits, E.164 without `+` (or a business-scoped user id).
    pub customer: String,
    /// The template's parameters, in order.
    pub params: Vec<String>,
    pub state: RecipientState,
    /// Sends Meta refused at the pair rate so far.
    pub attempts: u32,
}

/// The WABA-level signals read before each batch (written by the worker from Meta's
/// webhooks); absent items mean nothing was reported. Meta's number quality webhook names
/// a number by its display digits only, which a tenant's configuration does not hold: the
/// account's numbers are all read, and a flag on any of them pauses (an account usually
/// has one number per tenant; with more, pausing on a sibling's flag errs on the safe side).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signals {
    pub template: Option<Signal>,
    pub numbers: Vec<Signal>,
    pub account: Option<Signal>,
}

/// One signal item: its event or status, any restriction, and when it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub event: String,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

impl Signals {
    /// Why a running campaign must pause, if it must: its template is not approved, or
    /// since it started the number was flagged or downgraded, or the account restricted,
    /// disabled or found in violation.
    pub fn pause_reason(&self, started_at: Option<DateTime<Utc>>) -> Option<String> {
        if let Some(template) = &self.template
            && template.event != "APPROVED"
        {
            return Some(format!("template {}", template.event));
        }
        let since_start = |signal: &&Signal| started_at.is_none_or(|start| signal.at >= start);
        if let Some(number) = self
            .numbers
            .iter()
            .filter(since_start)
            .find(|number| matches!(number.event.as_str(), "FLAGGED" | "DOWNGRADE"))
        {
            return Some(format!("number quality {}", number.event));
        }
        let account = self.account.as_ref().filter(since_start)?;
        let detail = account.detail.as_deref().unwrap_or_default();
        let stops = match account.event.as_str() {
            "ACCOUNT_RESTRICTION" => detail.contains("RESTRICTED_BIZ_INITIATED_MESSAGING"),
            "DISABLED_UPDATE" => detail.contains("DISABLE"),
            "ACCOUNT_VIOLATION" | "ACCOUNT_DELETED" => true,
            _ => false,
        };
        stops.then(|| {
            format!("account {} {detail}", account.event)
                .trim()
                .to_owned()
        })
    }
}

/// `biz_opaque_callback_data` of a campaign send: its status finds the recipient.
pub fn callback_data(campaign_id: &str, seq: u32) -> String {
    format!("cmp:{campaign_id}:{seq}")
}

/// The campaign and recipient a status's callback data names.
pub fn parse_callback_data(data: &str) -> Option<(&str, u32)> {
    let rest = data.strip_prefix("cmp:")?;
    let (id, seq) = rest.rsplit_once(':')?;
    Some((id, seq.parse().ok()?)).filter(|(id, _)| !id.is_empty())
}

/// The forms a customer may be on the suppression list under: as given, and for a
/// Brazilian mobile the other ninth-digit form (Meta's `wa_id` may lack the 9).
pub fn customer_forms(customer: &str) -> Vec<String> {
    let mut forms = vec![customer.to_owned()];
    let digits = customer.bytes().all(|b| b.is_ascii_digit());
    if digits && customer.starts_with("55") {
        let (area, subscriber) = customer[2..].split_at(2.min(customer.len() - 2));
        match subscriber.len() {
            9 if subscriber.starts_with('9') => forms.push(format!("55{area}{}", &subscriber[1..])),
            8 if subscriber.starts_with(['6', '7', '8', '9']) => {
                forms.push(format!("55{area}9{subscriber}"))
            }
            _ => {}
        }
    }
    forms
}

/// How long after a send the customer's next conversation counts as its reply (and an
/// opt-out as caused by it), unless the tenant keeps data for less.
pub const REPLY_WINDOW: chrono::Duration = chrono::Duration::days(7);

/// The reply pointer a send leaves (`CAMPAIGN_REPLY#<pn>`, latest send wins): the worker
/// reads it when the customer opens a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyPointer {
    pub customer: String,
    pub sent_at: DateTime<Utc>,
    /// [`REPLY_WINDOW`] on, or the tenant's retention when shorter.
    pub expires_at: DateTime<Utc>,
}

/// A recipient's final outcome, written once (conditional on its state before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    Sent {
        wamid: String,
        reply: ReplyPointer,
    },
    /// `code`: Graph's error code; `None` refused before sending.
    Failed {
        code: Option<i64>,
    },
    /// On the suppression list at send time.
    Suppressed,
}

impl Mark {
    /// The campaign counters the mark adds one to.
    pub fn counters(&self) -> Vec<String> {
        match self {
            Mark::Sent { .. } => vec!["n_sent".into(), "n_done".into()],
            Mark::Failed { code } => vec![
                "n_failed".into(),
                "n_done".into(),
                code.map_or_else(|| "n_failed_invalid".into(), |c| format!("n_failed_{c}")),
            ],
            Mark::Suppressed => vec!["n_skipped".into(), "n_done".into()],
        }
    }
}

/// A delivery status of a campaign send, as the worker's status path applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryUpdate<'a> {
    pub phone_number_id: &'a str,
    pub campaign_id: &'a str,
    pub seq: u32,
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: &'a str,
    pub wamid: &'a str,
    pub error_code: Option<i64>,
}

/// The campaign counters a delivery status adds one to, given the status rank the
/// recipient had ([`status_rank`]): a read implies delivered; `sent` adds nothing (the
/// sender counted it).
pub fn delivery_counters(update: &DeliveryUpdate<'_>, before: u8) -> Vec<String> {
    let mut names = Vec::new();
    match update.status {
        "delivered" => names.push("n_delivered".to_owned()),
        "read" | "played" => {
            if before < status_rank("delivered") {
                names.push("n_delivered".to_owned());
            }
            if before < status_rank("read") {
                names.push("n_read".to_owned());
            }
        }
        "failed" => {
            names.push("n_failed".to_owned());
            names.push(update.error_code.map_or_else(
                || "n_failed_unknown".to_owned(),
                |code| format!("n_failed_{code}"),
            ));
        }
        _ => {}
    }
    names
}

/// Port: the campaign items. Every write that moves a recipient is conditional on the
/// state it leaves, so two senders (a redelivery) never both act on one recipient.
pub trait CampaignStore: Send + Sync {
    /// A strongly consistent read of the campaign.
    fn campaign(
        &self,
        phone_number_id: &str,
        campaign_id: &str,
    ) -> impl Future<Output = Result<Option<Campaign>, StoreError>> + Send;

    /// The signal items of the campaign's template, number and account, and the number's
    /// slow-down: one batch read.
    fn signals(
        &self,
        waba_id: &str,
        campaign: &Campaign,
    ) -> impl Future<Output = Result<(Signals, Option<Slowdown>), StoreError>> + Send;

    /// Which of `hashes` are on the number's suppression list: one batch read.
    fn suppressed(
        &self,
        phone_number_id: &str,
        hashes: &[String],
    ) -> impl Future<Output = Result<HashSet<String>, StoreError>> + Send;

    /// Recipients `from_seq..=to_seq`, in seq order.
    fn recipients(
        &self,
        batch: &Batch,
    ) -> impl Future<Output = Result<Vec<Recipient>, StoreError>> + Send;

    /// `pending` -> `sending`, with the time; `false` when it was not pending.
    fn mark_sending(
        &self,
        batch: &Batch,
        seq: u32,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// `from` -> the mark's state, then its counters added to the campaign (two writes:
    /// the recipient's is the fact; a crash between them loses that one count, never
    /// doubles it); `false` when the recipient was not in `from` (someone settled it).
    fn mark(
        &self,
        batch: &Batch,
        seq: u32,
        from: RecipientState,
        mark: &Mark,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Puts the customer on the number's suppression list as Meta's doing (131050: they
    /// stopped marketing messages from the business).
    fn suppress(
        &self,
        phone_number_id: &str,
        customer: &str,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// `sending` -> `pending`: Meta did not take it; `attempts` when it was refused at the
    /// pair rate.
    fn release(
        &self,
        batch: &Batch,
        seq: u32,
        attempts: u32,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Moves the campaign from `from` to `to` if its version is still `version`;
    /// `reason` is kept as `paused_reason`, `started_at` set when it starts, `queued`
    /// set as `n_queued` when given; then records it in the tenant's audit log as the
    /// platform's own moves are (`campaign.start`, `.pause`, `.finish`). `false` when the
    /// campaign changed meanwhile.
    fn transition(
        &self,
        campaign: &Campaign,
        to: State,
        change: Transition,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Starts a new failure-rate window at the given counters (conditional on the old
    /// window: one container moves it).
    fn move_failure_window(
        &self,
        campaign: &Campaign,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Campaigns due at `now` (the `CAMPAIGNS_DUE` items up to `now`): (pn, id, due key).
    fn due(&self, now: DateTime<Utc>) -> impl Future<Output = Result<Vec<Due>, StoreError>> + Send;

    /// Makes the campaign due (again) at `at`: the dispatcher queues its recipients then.
    fn due_at(
        &self,
        phone_number_id: &str,
        campaign_id: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes a due item once its campaign is running (or can never run).
    fn forget_due(&self, due: &Due) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Applies a delivery status at most once (by status rank): the recipient's
    /// `delivery`, and the campaign's counters; a recipient still `sending` (a send with
    /// an unknown outcome) is settled as sent with the status's wamid. `false` when it
    /// changed nothing.
    fn delivery(
        &self,
        update: &DeliveryUpdate<'_>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// What a transition writes besides the state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transition {
    /// The component making it (`campaign-dispatch`, `campaign-sender`): the audit log's
    /// actor is `system:<by>`.
    pub by: &'static str,
    pub reason: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub queued: Option<u32>,
}

/// The audit action of the sending system's move to `to`.
pub fn system_action(to: State) -> &'static str {
    match to {
        State::Running => "campaign.start",
        State::Paused => "campaign.pause",
        State::Done => "campaign.finish",
        _ => "campaign.move",
    }
}

/// A `CAMPAIGNS_DUE` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub phone_number_id: String,
    pub campaign_id: String,
    pub sort_key: String,
}

/// The `CAMPAIGNS_DUE` sort key of a campaign starting at `start_at` (epoch seconds).
pub fn due_key(start_at: i64, phone_number_id: &str, campaign_id: &str) -> String {
    format!("{start_at:010}#{phone_number_id}#{campaign_id}")
}

/// Port: the counters every sender container shares.
pub trait Pacer: Send + Sync {
    /// Takes up to `wanted` of slot `slot`'s `budget` tokens for the number: how many it
    /// got (0 when the slot is full).
    fn take(
        &self,
        phone_number_id: &str,
        slot: u64,
        wanted: u32,
        budget: u32,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send;

    /// Records a slow-down of the number for every container.
    fn slow_down(
        &self,
        phone_number_id: &str,
        slowdown: Slowdown,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Takes up to `wanted` of the portfolio's messaging limit at `now` (the hour
    /// counters of [`pacing::daily_window`]): how many it got.
    fn take_daily(
        &self,
        portfolio: &str,
        now: DateTime<Utc>,
        wanted: u32,
        limit: Option<u32>,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send;
}

/// Port: the messaging limit's count of business-initiated sends other than campaigns
/// (templates the worker sends outside a service window: fallbacks, follow-ups, SLA
/// alerts, the API's template sends), so campaigns leave room for them.
pub trait DailyCount: Send + Sync {
    /// Adds `count` to the portfolio's current hour, unconditionally.
    fn count_daily(
        &self,
        portfolio: &str,
        now: DateTime<Utc>,
        count: u32,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("campaign queue: {0}")]
pub struct CampaignQueueError(pub String);

/// Port: the campaign queue (standard SQS with a DLQ).
pub trait CampaignQueue: Send + Sync {
    /// Enqueues the batches, each to be received after `delay` (at most 15 minutes).
    fn enqueue(
        &self,
        batches: &[Batch],
        delay: Duration,
    ) -> impl Future<Output = Result<(), CampaignQueueError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_message_is_versioned() {
        let batch = Batch {
            phone_number_id: "123".into(),
            campaign_id: "cmp_abc".into(),
            from_seq: 1,
            to_seq: 50,
        };
        let json = batch.to_json();
        assert_eq!(
            json,
            r#"{"v":1,"batch":{"phone_number_id":"123","campaign_id":"cmp_abc","from_seq":1,"to_seq":50}}"#
        );
        assert_eq!(Batch::from_json(&json), Ok(batch));
        assert!(Batch::from_json(&json.replace("\"v\":1", "\"v\":2")).is_err());
        assert!(Batch::from_json("{}").is_err());
    }

    #[test]
    fn batches_cover_the_audience_once() {
        let batches = Batch::cover("1", "cmp_x", 120);
        let ranges: Vec<_> = batches.iter().map(|b| (b.from_seq, b.to_seq)).collect();
        assert_eq!(ranges, vec![(1, 50), (51, 100), (101, 120)]);
        assert!(Batch::cover("1", "cmp_x", 0).is_empty());
    }

    #[test]
    fn callback_data_names_campaign_and_recipient() {
        let data = callback_data("cmp_abc", 17);
        assert_eq!(data, "cmp:cmp_abc:17");
        assert_eq!(parse_callback_data(&data), Some(("cmp_abc", 17)));
        assert_eq!(parse_callback_data("wamid.x#0"), None);
        assert_eq!(parse_callback_data("cmp::3"), None);
        assert_eq!(parse_callback_data("cmp:cmp_abc:x"), None);
    }

    #[test]
    fn a_brazilian_mobile_is_looked_up_in_both_forms() {
        assert_eq!(
            customer_forms("5561981234567"),
            vec!["5561981234567", "556181234567"]
        );
        assert_eq!(
            customer_forms("556181234567"),
            vec!["556181234567", "5561981234567"]
        );
        assert_eq!(customer_forms("556132345678"), vec!["556132345678"]);
        assert_eq!(customer_forms("14155550100"), vec!["14155550100"]);
        assert_eq!(customer_forms("BR.8870001234"), vec!["BR.8870001234"]);
    }

    fn signal(event: &str, detail: Option<&str>, at: i64) -> Option<Signal> {
        Some(Signal {
            event: event.into(),
            detail: detail.map(Into::into),
            at: DateTime::from_timestamp(at, 0).unwrap(),
        })
    }

    #[test]
    fn signals_since_the_start_pause_a_campaign() {
        let started = DateTime::from_timestamp(1_000, 0);
        let quiet = Signals {
            template: signal("APPROVED", None, 10),
            numbers: signal("UNFLAGGED", None, 2_000).into_iter().collect(),
            account: signal("VOLUME_BASED_PRICING_TIER_UPDATE", None, 2_000),
        };
        assert_eq!(quiet.pause_reason(started), None);
        assert_eq!(Signals::default().pause_reason(started), None);
        let paused = Signals {
            template: signal("PAUSED", None, 10),
            ..Signals::default()
        };
        assert_eq!(
            paused.pause_reason(started).as_deref(),
            Some("template PAUSED")
        );
        let flagged_before = Signals {
            numbers: signal("FLAGGED", None, 500).into_iter().collect(),
            ..Signals::default()
        };
        assert_eq!(flagged_before.pause_reason(started), None);
        let flagged = Signals {
            numbers: vec![
                signal("UNFLAGGED", None, 1_400).unwrap(),
                signal("FLAGGED", None, 1_500).unwrap(),
            ],
            ..Signals::default()
        };
        assert!(flagged.pause_reason(started).unwrap().contains("FLAGGED"));
        let restricted = Signals {
            account: signal(
                "ACCOUNT_RESTRICTION",
                Some("RESTRICTED_BIZ_INITIATED_MESSAGING"),
                1_500,
            ),
            ..Signals::default()
        };
        assert!(restricted.pause_reason(started).is_some());
        let calls_only = Signals {
            account: signal(
                "ACCOUNT_RESTRICTION",
                Some("RESTRICTED_BUSINESS_INITIATED_CALLING"),
                1_500,
            ),
            ..Signals::default()
        };
        assert_eq!(calls_only.pause_reason(started), None);
    }

    #[test]
    fn states_read_as_written() {
        assert_eq!(
            RecipientState::parse("sending"),
            Some(RecipientState::Sending)
        );
        assert_eq!(RecipientState::parse("nope"), None);
        let failed = Mark::Failed { code: Some(131049) };
        assert!(failed.counters().contains(&"n_failed_131049".to_owned()));
    }
}
