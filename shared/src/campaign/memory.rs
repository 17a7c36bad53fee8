//! In-memory twins of the campaign store, the pacer and the campaign queue, keeping the
//! adapters' conditions (a recipient moves only from the state the caller names, a slot
//! never holds more than its budget, a transition only from the version read).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::store::keys::customer_hash;

use super::pacing::{Slowdown, daily_grant, daily_window, hour_of};
use super::{
    Batch, Campaign, CampaignQueue, CampaignQueueError, CampaignStore, Counters, DailyCount,
    DeliveryUpdate, Due, Mark, Pacer, Recipient, RecipientState, ReplyPointer, Signals, State,
    Transition, due_key,
};
use crate::store::{StoreError, status_rank};

#[derive(Debug, Clone)]
struct StoredRecipient {
    recipient: Recipient,
    wamid: Option<String>,
    error_code: Option<i64>,
    delivery: Option<String>,
}

type CampaignKey = (String, String);

/// A recipient as the tests read it: state, wamid, error code, delivery status.
pub type RecipientRow = (RecipientState, Option<String>, Option<i64>, Option<String>);

#[derive(Default)]
struct Tables {
    campaigns: BTreeMap<CampaignKey, Campaign>,
    counters: HashMap<CampaignKey, BTreeMap<String, u64>>,
    recipients: BTreeMap<(String, String, u32), StoredRecipient>,
    optouts: HashSet<(String, String)>,
    signals: HashMap<String, Signals>,
    slowdowns: HashMap<String, Slowdown>,
    slots: HashMap<(String, u64), u32>,
    daily: HashMap<(String, i64), u64>,
    due: BTreeMap<String, Due>,
    paused_reasons: HashMap<CampaignKey, String>,
    /// `(number, customer)` -> the send's reply pointer (campaign id, seq, pointer).
    reply_pointers: HashMap<(String, String), (String, u32, ReplyPointer)>,
    /// Every call that reads or writes, by name, for the cost tests.
    calls: BTreeMap<&'static str, u64>,
}

/// Cheap to clone: clones share the tables (several "containers" in one test).
#[derive(Clone, Default)]
pub struct MemoryCampaigns {
    tables: Arc<Mutex<Tables>>,
}

impl MemoryCampaigns {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn call(&self, name: &'static str) -> MutexGuard<'_, Tables> {
        let mut tables = self.lock();
        *tables.calls.entry(name).or_default() += 1;
        tables
    }

    /// Puts a campaign, due at its `start_at` (or now) when approved or scheduled.
    pub fn put_campaign(&self, campaign: Campaign) {
        let mut tables = self.lock();
        let key = (campaign.phone_number_id.clone(), campaign.id.clone());
        if matches!(campaign.state, State::Approved | State::Scheduled) {
            let start = campaign.start_at.map_or(0, |at| at.timestamp());
            let sort_key = due_key(start, &campaign.phone_number_id, &campaign.id);
            let due = Due {
                phone_number_id: campaign.phone_number_id.clone(),
                campaign_id: campaign.id.clone(),
                sort_key: sort_key.clone(),
            };
            tables.due.insert(sort_key, due);
        }
        let counters = tables.counters.entry(key.clone()).or_default();
        counters.insert("n_queued".into(), campaign.counters.queued);
        tables.campaigns.insert(key, campaign);
    }

    /// Puts recipients `1..=customers.len()`, pending, with the given parameters.
    pub fn put_recipients(&self, pn: &str, id: &str, customers: &[String], params: &[String]) {
        let mut tables = self.lock();
        for (index, customer) in customers.iter().enumerate() {
            let seq = u32::try_from(index + 1).expect("fits");
            let recipient = Recipient {
                seq,
                customer: customer.clone(),
                params: params.to_vec(),
                state: RecipientState::Pending,
                attempts: 0,
            };
            tables.recipients.insert(
                (pn.into(), id.into(), seq),
                StoredRecipient {
                    recipient,
                    wamid: None,
                    error_code: None,
                    delivery: None,
                },
            );
        }
    }

    pub fn opt_out(&self, pn: &str, customer: &str) {
        let hash = customer_hash(pn, customer);
        self.lock().optouts.insert((pn.into(), hash));
    }

    pub fn put_signals(&self, waba_id: &str, signals: Signals) {
        self.lock().signals.insert(waba_id.into(), signals);
    }

    /// `(state, wamid, error code, delivery)` of a recipient.
    pub fn recipient(&self, pn: &str, id: &str, seq: u32) -> Option<RecipientRow> {
        let tables = self.lock();
        let stored = tables.recipients.get(&(pn.into(), id.into(), seq))?;
        Some((
            stored.recipient.state,
            stored.wamid.clone(),
            stored.error_code,
            stored.delivery.clone(),
        ))
    }

    /// A campaign counter (`n_sent`, `n_failed_131049`...).
    pub fn counter(&self, pn: &str, id: &str, name: &str) -> u64 {
        let tables = self.lock();
        let counters = tables.counters.get(&(pn.into(), id.into()));
        counters.and_then(|c| c.get(name)).copied().unwrap_or(0)
    }

    pub fn state(&self, pn: &str, id: &str) -> Option<State> {
        let tables = self.lock();
        tables
            .campaigns
            .get(&(pn.into(), id.into()))
            .map(|c| c.state)
    }

    pub fn paused_reason(&self, pn: &str, id: &str) -> Option<String> {
        let tables = self.lock();
        tables.paused_reasons.get(&(pn.into(), id.into())).cloned()
    }

    /// The reply pointer the last send to a customer left: campaign id, seq, pointer.
    pub fn reply_pointer(&self, pn: &str, customer: &str) -> Option<(String, u32, ReplyPointer)> {
        let tables = self.lock();
        tables
            .reply_pointers
            .get(&(pn.into(), customer.into()))
            .cloned()
    }

    /// Calls made so far, by port method.
    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.lock().calls.clone()
    }

    pub fn slowdown(&self, pn: &str) -> Option<Slowdown> {
        self.lock().slowdowns.get(pn).copied()
    }

    fn add(tables: &mut Tables, key: &CampaignKey, names: &[String]) {
        let counters = tables.counters.entry(key.clone()).or_default();
        for name in names {
            *counters.entry(name.clone()).or_default() += 1;
        }
    }
}

fn counters_of(counters: Option<&BTreeMap<String, u64>>) -> Counters {
    let get = |name: &str| counters.and_then(|c| c.get(name)).copied().unwrap_or(0);
    Counters {
        queued: get("n_queued"),
        done: get("n_done"),
        failed: get("n_failed"),
        window_done: get("window_done"),
        window_failed: get("window_failed"),
    }
}

impl CampaignStore for MemoryCampaigns {
    async fn campaign(&self, pn: &str, id: &str) -> Result<Option<Campaign>, StoreError> {
        let tables = self.call("campaign");
        let key = (pn.to_owned(), id.to_owned());
        Ok(tables.campaigns.get(&key).map(|campaign| Campaign {
            counters: counters_of(tables.counters.get(&key)),
            ..campaign.clone()
        }))
    }

    async fn signals(
        &self,
        waba_id: &str,
        campaign: &Campaign,
    ) -> Result<(Signals, Option<Slowdown>), StoreError> {
        let tables = self.call("signals");
        let signals = tables.signals.get(waba_id).cloned().unwrap_or_default();
        let slowdown = tables.slowdowns.get(&campaign.phone_number_id).copied();
        Ok((signals, slowdown))
    }

    async fn suppressed(&self, pn: &str, hashes: &[String]) -> Result<HashSet<String>, StoreError> {
        let tables = self.call("suppressed");
        Ok(hashes
            .iter()
            .filter(|h| tables.optouts.contains(&(pn.to_owned(), (*h).clone())))
            .cloned()
            .collect())
    }

    async fn recipients(&self, batch: &Batch) -> Result<Vec<Recipient>, StoreError> {
        let tables = self.call("recipients");
        let pn = batch.phone_number_id.clone();
        let id = batch.campaign_id.clone();
        let range = (pn.clone(), id.clone(), batch.from_seq)..=(pn, id, batch.to_seq);
        Ok(tables
            .recipients
            .range(range)
            .map(|(_, stored)| stored.recipient.clone())
            .collect())
    }

    async fn mark_sending(
        &self,
        batch: &Batch,
        seq: u32,
        _now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tables = self.call("mark_sending");
        let key = (
            batch.phone_number_id.clone(),
            batch.campaign_id.clone(),
            seq,
        );
        match tables.recipients.get_mut(&key) {
            Some(stored) if stored.recipient.state == RecipientState::Pending => {
                stored.recipient.state = RecipientState::Sending;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn mark(
        &self,
        batch: &Batch,
        seq: u32,
        from: RecipientState,
        mark: &Mark,
    ) -> Result<bool, StoreError> {
        let mut tables = self.call("mark");
        let key = (
            batch.phone_number_id.clone(),
            batch.campaign_id.clone(),
            seq,
        );
        let Some(stored) = tables.recipients.get_mut(&key) else {
            return Ok(false);
        };
        if stored.recipient.state != from {
            return Ok(false);
        }
        match mark {
            Mark::Sent { wamid, reply } => {
                stored.recipient.state = RecipientState::Sent;
                stored.wamid = Some(wamid.clone());
                let pointer = (batch.campaign_id.clone(), seq, reply.clone());
                let customer = (batch.phone_number_id.clone(), reply.customer.clone());
                tables.reply_pointers.insert(customer, pointer);
            }
            Mark::Failed { code } => {
                stored.recipient.state = RecipientState::Failed;
                stored.error_code = *code;
            }
            Mark::Suppressed => stored.recipient.state = RecipientState::Skipped,
        }
        let campaign = (batch.phone_number_id.clone(), batch.campaign_id.clone());
        Self::add(&mut tables, &campaign, &mark.counters());
        Ok(true)
    }

    async fn release(&self, batch: &Batch, seq: u32, attempts: u32) -> Result<(), StoreError> {
        let mut tables = self.call("release");
        let key = (
            batch.phone_number_id.clone(),
            batch.campaign_id.clone(),
            seq,
        );
        if let Some(stored) = tables.recipients.get_mut(&key)
            && stored.recipient.state == RecipientState::Sending
        {
            stored.recipient.state = RecipientState::Pending;
            stored.recipient.attempts = attempts;
        }
        Ok(())
    }

    async fn transition(
        &self,
        campaign: &Campaign,
        to: State,
        change: Transition,
    ) -> Result<bool, StoreError> {
        let mut tables = self.call("transition");
        let key = (campaign.phone_number_id.clone(), campaign.id.clone());
        let Some(stored) = tables.campaigns.get_mut(&key) else {
            return Ok(false);
        };
        if stored.version != campaign.version || stored.state != campaign.state {
            return Ok(false);
        }
        stored.state = to;
        stored.version += 1;
        if let Some(at) = change.started_at {
            stored.started_at = Some(at);
        }
        if let Some(queued) = change.queued {
            let counters = tables.counters.entry(key.clone()).or_default();
            counters.insert("n_queued".into(), u64::from(queued));
        }
        if let Some(reason) = change.reason {
            tables.paused_reasons.insert(key, reason);
        }
        Ok(true)
    }

    async fn move_failure_window(&self, campaign: &Campaign) -> Result<(), StoreError> {
        let mut tables = self.call("move_failure_window");
        let key = (campaign.phone_number_id.clone(), campaign.id.clone());
        let counters = tables.counters.entry(key).or_default();
        let current =
            |counters: &BTreeMap<String, u64>, name: &str| counters.get(name).copied().unwrap_or(0);
        if current(counters, "window_done") == campaign.counters.window_done {
            counters.insert("window_done".into(), campaign.counters.done);
            counters.insert("window_failed".into(), campaign.counters.failed);
        }
        Ok(())
    }

    async fn due(&self, now: DateTime<Utc>) -> Result<Vec<Due>, StoreError> {
        let tables = self.call("due");
        let until = format!("{:010}$", now.timestamp());
        Ok(tables.due.range(..until).map(|(_, d)| d.clone()).collect())
    }

    async fn suppress(
        &self,
        pn: &str,
        customer: &str,
        _since: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let hash = customer_hash(pn, customer);
        self.call("suppress").optouts.insert((pn.to_owned(), hash));
        Ok(())
    }

    async fn due_at(&self, pn: &str, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let sort_key = due_key(at.timestamp(), pn, id);
        let due = Due {
            phone_number_id: pn.to_owned(),
            campaign_id: id.to_owned(),
            sort_key: sort_key.clone(),
        };
        self.call("due_at").due.insert(sort_key, due);
        Ok(())
    }

    async fn forget_due(&self, due: &Due) -> Result<(), StoreError> {
        self.call("forget_due").due.remove(&due.sort_key);
        Ok(())
    }

    async fn delivery(&self, update: &DeliveryUpdate<'_>) -> Result<bool, StoreError> {
        let mut tables = self.call("delivery");
        let key = (
            update.phone_number_id.to_owned(),
            update.campaign_id.to_owned(),
            update.seq,
        );
        let Some(stored) = tables.recipients.get_mut(&key) else {
            return Ok(false);
        };
        let before = stored.delivery.as_deref().map_or(0, status_rank);
        if status_rank(update.status) <= before {
            return Ok(false);
        }
        stored.delivery = Some(update.status.to_owned());
        let mut names = super::delivery_counters(update, before);
        if stored.recipient.state == RecipientState::Sending {
            stored.wamid = Some(update.wamid.to_owned());
            if update.status == "failed" {
                stored.recipient.state = RecipientState::Failed;
                stored.error_code = update.error_code;
            } else {
                stored.recipient.state = RecipientState::Sent;
                names.push("n_sent".into());
            }
            names.push("n_done".into());
        }
        let campaign = (key.0, key.1);
        Self::add(&mut tables, &campaign, &names);
        Ok(true)
    }
}

impl Pacer for MemoryCampaigns {
    async fn take(&self, pn: &str, slot: u64, wanted: u32, budget: u32) -> Result<u32, StoreError> {
        let mut tables = self.call("take");
        let taken = tables.slots.entry((pn.to_owned(), slot)).or_default();
        let got = wanted.min(budget.saturating_sub(*taken));
        *taken += got;
        Ok(got)
    }

    async fn slow_down(&self, pn: &str, slowdown: Slowdown) -> Result<(), StoreError> {
        self.call("slow_down")
            .slowdowns
            .insert(pn.to_owned(), slowdown);
        Ok(())
    }

    async fn take_daily(
        &self,
        portfolio: &str,
        now: DateTime<Utc>,
        wanted: u32,
        limit: Option<u32>,
    ) -> Result<u32, StoreError> {
        let mut tables = self.call("take_daily");
        let used: u64 = daily_window(now)
            .map(|hour| {
                let key = (portfolio.to_owned(), hour);
                tables.daily.get(&key).copied().unwrap_or(0)
            })
            .sum();
        let got = daily_grant(limit, used, wanted);
        *tables
            .daily
            .entry((portfolio.to_owned(), hour_of(now)))
            .or_default() += u64::from(got);
        Ok(got)
    }
}

impl DailyCount for MemoryCampaigns {
    async fn count_daily(
        &self,
        portfolio: &str,
        now: DateTime<Utc>,
        count: u32,
    ) -> Result<(), StoreError> {
        let mut tables = self.call("count_daily");
        *tables
            .daily
            .entry((portfolio.to_owned(), hour_of(now)))
            .or_default() += u64::from(count);
        Ok(())
    }
}

impl MemoryCampaigns {
    /// The portfolio's count in `now`'s hour.
    pub fn daily_count(&self, portfolio: &str, now: DateTime<Utc>) -> u64 {
        let tables = self.tables.lock().unwrap();
        tables
            .daily
            .get(&(portfolio.to_owned(), hour_of(now)))
            .copied()
            .unwrap_or(0)
    }
}

/// The campaign queue's twin: what was queued, with its delay.
#[derive(Clone, Default)]
pub struct MemoryCampaignQueue {
    queued: Arc<Mutex<Vec<(Batch, Duration)>>>,
}

impl MemoryCampaignQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes everything queued so far.
    pub fn drain(&self) -> Vec<(Batch, Duration)> {
        std::mem::take(&mut *self.queued.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl CampaignQueue for MemoryCampaignQueue {
    async fn enqueue(&self, batches: &[Batch], delay: Duration) -> Result<(), CampaignQueueError> {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        queued.extend(batches.iter().map(|b| (b.clone(), delay)));
        Ok(())
    }
}
