//! One batch of a campaign, as the sender function handles a queue message.
//!
//! Before the batch: the campaign must be `running` (a strongly consistent read), the
//! WABA's signals must not call for a pause, nor the share of permanent failures. Then the
//! batch's recipients (one query), the suppression list for the pending ones (one batch
//! read), and the portfolio's messaging limit for those left (one counter; what it does
//! not allow is queued again for when the window moves). Then, slot by slot, the number's
//! send tokens (one conditional `ADD` per slot) and, for each recipient given a token,
//! concurrently: `pending` -> `sending` (conditional), the template through the sender
//! port with callback data `cmp:<id>:<seq>`, and its outcome with the campaign's counters
//! in one transaction (conditional on `sending`).
//!
//! **Sends with an unknown outcome.** The Cloud API takes no idempotency key. A recipient
//! left `sending` (Meta's answer was lost, the container died between the send and its
//! mark) is never sent again: a redelivered batch skips it, and its first status (the
//! worker's status path, by its callback data) settles it as sent. A campaign message is
//! sent at most once; one whose status never comes stays `sending`, counted nowhere but
//! in the batch report. The window where Meta took a message the table does not know
//! about is the time between Meta's answer and the mark's transaction, plus any delay of
//! Meta's status webhook.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use futures::future::join_all;
use serde_json::{Value, json};
use thiserror::Error;
use tokio::time::Instant;

use super::outcome::{MAX_PAIR_RATE_ATTEMPTS, SendOutcome, pair_rate_delay};
use super::pacing::{
    Slowdown, effective_rate, factor_at, slot_budget, slot_of, slot_start, window_moves_at,
};
use super::{
    Batch, Campaign, CampaignQueue, CampaignQueueError, CampaignStore, FAILURE_WINDOW, Mark, Pacer,
    REPLY_WINDOW, Recipient, RecipientState, ReplyPointer, State, Transition, callback_data,
    customer_forms,
};
use crate::desk::AlertTopic;
use crate::store::StoreError;
use crate::store::keys::customer_hash;
use crate::support::deadline::Deadline;
use crate::tenant::Tenant;
use crate::tenant::hours::{is_open, next_opening};
use crate::whatsapp::outbound::Outbound;
use crate::whatsapp::{CALL_TIMEOUT, Sender};

/// Wall-clock time that moves with tokio's clock, so tests can run it paused: read once
/// per invocation, then advanced by the monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall: DateTime<Utc>,
    at: Instant,
}

impl Clock {
    pub fn starting_at(wall: DateTime<Utc>) -> Self {
        Self {
            wall,
            at: Instant::now(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = Instant::now().saturating_duration_since(self.at);
        self.wall + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }

    pub async fn sleep_until(&self, at: DateTime<Utc>) {
        if let Ok(wait) = (at - self.now()).to_std() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// The ports a batch uses.
pub struct Ports<'a, S, P, G, Q, A> {
    pub store: &'a S,
    pub pacer: &'a P,
    pub graph: &'a G,
    pub queue: &'a Q,
    pub alerts: &'a A,
}

/// What a batch did, for the logs and the tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub sent: u32,
    pub failed: u32,
    pub suppressed: u32,
    /// Recipients sent to whose outcome is unknown (left `sending`).
    pub unknown: u32,
    /// Recipients queued again: the messaging limit, or the pair rate.
    pub deferred: u32,
    /// Sends Meta throttled (130429), sent again later in the batch.
    pub throttled: u32,
    /// Recipients not pending when the batch came (a redelivery, a settled send).
    pub not_pending: u32,
    /// The campaign was not running: nothing done.
    pub not_running: bool,
    /// The campaign sends only in business hours and the tenant is closed: made due at
    /// the opening, nothing sent.
    pub waiting_for_hours: bool,
    pub paused: Option<String>,
    /// This batch moved the campaign to `done`.
    pub finished: bool,
}

#[derive(Debug, Error)]
pub enum BatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] CampaignQueueError),
    /// Recipients are left pending (Meta unavailable, or no time left): the queue
    /// redelivers the batch, which goes on where this one stopped.
    #[error("batch not finished: {0}")]
    Unfinished(String),
}

/// What became of one recipient given a token.
enum Step {
    Sent,
    Failed,
    Unknown,
    NotPending,
    Throttled,
    PairRate { attempts: u32 },
    Stop(String),
    RetryLater(Option<i64>),
}

pub async fn send_batch<S, P, G, Q, A>(
    ports: &Ports<'_, S, P, G, Q, A>,
    tenant: &Tenant,
    token: &str,
    batch: &Batch,
    clock: Clock,
    deadline: Deadline,
) -> Result<BatchReport, BatchError>
where
    S: CampaignStore,
    P: Pacer,
    G: Sender,
    Q: CampaignQueue,
    A: AlertTopic,
{
    let mut report = BatchReport::default();
    let pn = batch.phone_number_id.as_str();
    let settings = &tenant.campaigns;
    let campaign = match ports.store.campaign(pn, &batch.campaign_id).await? {
        Some(campaign) if campaign.state == State::Running => campaign,
        _ => {
            report.not_running = true;
            return Ok(report);
        }
    };
    if campaign.business_hours_only {
        let now = clock.now();
        if !is_open(tenant, now) {
            // Sent only while the tenant is open: the dispatcher queues the campaign again
            // at the opening (this batch's recipients stay pending).
            let opening = next_opening(tenant, now).unwrap_or(now + CLOSED_RECHECK);
            ports.store.due_at(pn, &campaign.id, opening).await?;
            report.waiting_for_hours = true;
            return Ok(report);
        }
    }
    let (signals, mut slowdown) = ports.store.signals(&tenant.waba_id, &campaign).await?;
    let reason = signals
        .pause_reason(campaign.started_at)
        .or_else(|| failure_rate_reason(&campaign, settings.failure_pause_threshold));
    if let Some(reason) = reason {
        pause(ports, &campaign, &reason).await?;
        report.paused = Some(reason);
        return Ok(report);
    }
    if campaign.counters.done - campaign.counters.window_done >= FAILURE_WINDOW {
        ports.store.move_failure_window(&campaign).await?;
    }

    let recipients = ports.store.recipients(batch).await?;
    let (pending, settled): (Vec<_>, Vec<_>) = recipients
        .into_iter()
        .partition(|r| r.state == RecipientState::Pending);
    report.not_pending = count(settled.len());
    let pending = drop_suppressed(ports, batch, pending, &mut report).await?;

    let portfolio = settings.portfolio(tenant);
    let wanted = count(pending.len());
    let now = clock.now();
    let limit = settings.daily_limit.customers();
    let granted = ports
        .pacer
        .take_daily(portfolio, now, wanted, limit)
        .await?;
    let mut queue: VecDeque<Recipient> = pending.into();
    if granted < wanted {
        let later: Vec<Recipient> = queue.drain(granted as usize..).collect();
        let rest = Batch {
            from_seq: later[0].seq,
            ..batch.clone()
        };
        let wait = (window_moves_at(now) - now).to_std().unwrap_or_default();
        ports
            .queue
            .enqueue(&[rest], wait.min(MAX_QUEUE_DELAY))
            .await?;
        report.deferred += count(later.len());
        tracing::info!(
            campaign = %batch.campaign_id,
            deferred = later.len(),
            "messaging limit reached, recipients queued for when the window moves"
        );
    }

    while !queue.is_empty() {
        if !deadline.fits(CALL_TIMEOUT) {
            return Err(BatchError::Unfinished(
                "no time left for another send".into(),
            ));
        }
        let now = clock.now();
        let slot = slot_of(now);
        let rate = effective_rate(settings.throughput_per_second, factor_at(slowdown, now));
        let budget = slot_budget(slot, rate);
        let wanted = budget.min(count(queue.len()));
        let got = match wanted {
            0 => 0,
            wanted => ports.pacer.take(pn, slot, wanted, budget).await?,
        };
        if got > 0 {
            let chunk: Vec<Recipient> = queue.drain(..got as usize).collect();
            let steps = join_all(
                chunk
                    .iter()
                    .map(|r| send_one(ports, token, batch, &campaign, r, clock, deadline, tenant)),
            )
            .await;
            let mut stop = None;
            let mut retry_later = None;
            let mut throttled = Vec::new();
            for (recipient, step) in chunk.into_iter().zip(steps) {
                match step? {
                    Step::Sent => report.sent += 1,
                    Step::Failed => report.failed += 1,
                    Step::Unknown => report.unknown += 1,
                    Step::NotPending => report.not_pending += 1,
                    Step::Throttled => throttled.push(recipient),
                    Step::PairRate { attempts } => {
                        let only = Batch {
                            from_seq: recipient.seq,
                            to_seq: recipient.seq,
                            ..batch.clone()
                        };
                        let wait = pair_rate_delay(attempts).min(MAX_QUEUE_DELAY);
                        ports.queue.enqueue(&[only], wait).await?;
                        report.deferred += 1;
                    }
                    Step::Stop(reason) => stop = Some(reason),
                    Step::RetryLater(code) => retry_later = Some(code),
                }
            }
            if !throttled.is_empty() {
                report.throttled += count(throttled.len());
                let slower = Slowdown::after_throttle(slowdown, now);
                ports.pacer.slow_down(pn, slower).await?;
                slowdown = Some(slower);
                for recipient in throttled.into_iter().rev() {
                    queue.push_front(recipient);
                }
            }
            if let Some(reason) = stop {
                pause(ports, &campaign, &reason).await?;
                report.paused = Some(reason);
                return Ok(report);
            }
            if let Some(code) = retry_later {
                return Err(BatchError::Unfinished(format!(
                    "Graph API unavailable (code {code:?})"
                )));
            }
        }
        if !queue.is_empty() {
            clock.sleep_until(slot_start(slot + 1)).await;
        }
    }

    report.finished = finish_if_done(ports.store, pn, &batch.campaign_id).await?;
    Ok(report)
}

/// When a closed tenant with no opening in sight is looked at again.
const CLOSED_RECHECK: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// Meta's refusal for a customer who stopped marketing messages from the business.
const MARKETING_OPT_OUT: i64 = 131050;

/// The audit log's name of the sender.
const COMPONENT: &str = "campaign-sender";

/// SQS's longest delivery delay.
const MAX_QUEUE_DELAY: std::time::Duration = std::time::Duration::from_secs(900);

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Why the share of permanent failures pauses the campaign: over the threshold among at
/// least [`FAILURE_WINDOW`] outcomes since the window last moved (so it judges between
/// the last 200 and 400 outcomes; failed statuses count with the failures at send).
fn failure_rate_reason(campaign: &Campaign, threshold: f64) -> Option<String> {
    let counters = &campaign.counters;
    let done = counters.done.saturating_sub(counters.window_done);
    let failed = counters.failed.saturating_sub(counters.window_failed);
    if done < FAILURE_WINDOW {
        return None;
    }
    let share = failed as f64 / done as f64;
    (share > threshold).then(|| {
        format!(
            "{failed} of the last {done} sends failed (threshold {:.0}%)",
            threshold * 100.0
        )
    })
}

/// Marks the suppressed recipients skipped and returns the others.
async fn drop_suppressed<S, P, G, Q, A>(
    ports: &Ports<'_, S, P, G, Q, A>,
    batch: &Batch,
    pending: Vec<Recipient>,
    report: &mut BatchReport,
) -> Result<Vec<Recipient>, BatchError>
where
    S: CampaignStore,
{
    let pn = &batch.phone_number_id;
    let hashes: HashMap<u32, Vec<String>> = pending
        .iter()
        .map(|r| {
            let forms = customer_forms(&r.customer);
            (r.seq, forms.iter().map(|f| customer_hash(pn, f)).collect())
        })
        .collect();
    if hashes.is_empty() {
        return Ok(pending);
    }
    let all: Vec<String> = hashes.values().flatten().cloned().collect();
    let suppressed = ports.store.suppressed(pn, &all).await?;
    let mut kept = Vec::with_capacity(pending.len());
    for recipient in pending {
        if hashes[&recipient.seq]
            .iter()
            .any(|h| suppressed.contains(h))
        {
            ports
                .store
                .mark(
                    batch,
                    recipient.seq,
                    RecipientState::Pending,
                    &Mark::Suppressed,
                )
                .await?;
            report.suppressed += 1;
        } else {
            kept.push(recipient);
        }
    }
    Ok(kept)
}

#[allow(clippy::too_many_arguments)]
async fn send_one<S, P, G, Q, A>(
    ports: &Ports<'_, S, P, G, Q, A>,
    token: &str,
    batch: &Batch,
    campaign: &Campaign,
    recipient: &Recipient,
    clock: Clock,
    deadline: Deadline,
    tenant: &Tenant,
) -> Result<Step, BatchError>
where
    S: CampaignStore,
    G: Sender,
{
    let store = ports.store;
    let seq = recipient.seq;
    if !store.mark_sending(batch, seq, clock.now()).await? {
        return Ok(Step::NotPending);
    }
    let message = Outbound::GraphTemplate {
        name: campaign.template_name.clone(),
        language: campaign.template_language.clone(),
        components: components(&recipient.params),
    };
    let result = ports
        .graph
        .send(
            &batch.phone_number_id,
            token,
            &recipient.customer,
            &message,
            &callback_data(&campaign.id, seq),
            deadline,
        )
        .await;
    let sending = RecipientState::Sending;
    let step = match SendOutcome::of(result) {
        SendOutcome::Sent { wamid } => {
            let sent_at = clock.now();
            let retention = chrono::Duration::days(i64::from(tenant.retention_days));
            let reply = ReplyPointer {
                customer: recipient.customer.clone(),
                sent_at,
                expires_at: sent_at + REPLY_WINDOW.min(retention),
            };
            store
                .mark(batch, seq, sending, &Mark::Sent { wamid, reply })
                .await?;
            Step::Sent
        }
        SendOutcome::Failed { code } => {
            if code == Some(MARKETING_OPT_OUT) {
                // Meta says they stopped marketing from the business: no campaign of the
                // tenant sends to them again until they opt back in.
                store
                    .suppress(&batch.phone_number_id, &recipient.customer, clock.now())
                    .await?;
            }
            store
                .mark(batch, seq, sending, &Mark::Failed { code })
                .await?;
            tracing::info!(campaign = %campaign.id, seq, ?code, "campaign send refused for this recipient");
            Step::Failed
        }
        SendOutcome::Unknown => {
            tracing::warn!(campaign = %campaign.id, seq, "campaign send outcome unknown: left for its status to settle");
            Step::Unknown
        }
        SendOutcome::PairRate => {
            let attempts = recipient.attempts + 1;
            if attempts >= MAX_PAIR_RATE_ATTEMPTS {
                let failed = Mark::Failed { code: Some(131056) };
                store.mark(batch, seq, sending, &failed).await?;
                Step::Failed
            } else {
                store.release(batch, seq, attempts).await?;
                Step::PairRate { attempts }
            }
        }
        SendOutcome::Throttled => {
            store.release(batch, seq, recipient.attempts).await?;
            Step::Throttled
        }
        SendOutcome::TemplateStop { code } => {
            store.release(batch, seq, recipient.attempts).await?;
            Step::Stop(format!("template refused by Meta (code {code})"))
        }
        SendOutcome::AccountStop { code } => {
            store.release(batch, seq, recipient.attempts).await?;
            Step::Stop(format!("account or number blocked by Meta (code {code})"))
        }
        SendOutcome::RetryLater { code } => {
            store.release(batch, seq, recipient.attempts).await?;
            Step::RetryLater(code)
        }
    };
    Ok(step)
}

/// The template's components: the recipient's parameters as the body's, in order.
fn components(params: &[String]) -> Vec<Value> {
    if params.is_empty() {
        return Vec::new();
    }
    let parameters: Vec<Value> = params
        .iter()
        .map(|text| json!({"type": "text", "text": text}))
        .collect();
    vec![json!({"type": "body", "parameters": parameters})]
}

/// Pauses the campaign (if still as read) and alerts the supervisors; an alert that fails
/// is logged: the pause itself is what stops the sends.
async fn pause<S, P, G, Q, A>(
    ports: &Ports<'_, S, P, G, Q, A>,
    campaign: &Campaign,
    reason: &str,
) -> Result<(), BatchError>
where
    S: CampaignStore,
    A: AlertTopic,
{
    let change = Transition {
        by: COMPONENT,
        reason: Some(reason.to_owned()),
        ..Transition::default()
    };
    if !ports
        .store
        .transition(campaign, State::Paused, change)
        .await?
    {
        return Ok(());
    }
    tracing::warn!(campaign = %campaign.id, reason, "campaign paused");
    let subject = format!("Campaign {} paused", campaign.id);
    // JSON, as the SLA alerts on the same topic, for supervisors' tooling.
    let message = json!({
        "kind": "campaign_paused",
        "phone_number_id": campaign.phone_number_id,
        "campaign_id": campaign.id,
        "reason": reason,
    })
    .to_string();
    if let Err(error) = ports.alerts.publish(&subject, &message).await {
        tracing::error!(campaign = %campaign.id, %error, "the pause alert was not published");
    }
    Ok(())
}

/// Moves the campaign to `done` once every queued recipient has an outcome.
async fn finish_if_done<S: CampaignStore>(
    store: &S,
    phone_number_id: &str,
    campaign_id: &str,
) -> Result<bool, BatchError> {
    let Some(campaign) = store.campaign(phone_number_id, campaign_id).await? else {
        return Ok(false);
    };
    let counters = campaign.counters;
    if campaign.state != State::Running || counters.done < counters.queued {
        return Ok(false);
    }
    let done = store
        .transition(
            &campaign,
            State::Done,
            Transition {
                by: COMPONENT,
                ..Transition::default()
            },
        )
        .await?;
    if done {
        tracing::info!(campaign = %campaign_id, "campaign done");
    }
    Ok(done)
}

#[cfg(test)]
#[path = "sender_tests.rs"]
mod tests;
