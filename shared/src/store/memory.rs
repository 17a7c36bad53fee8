//! The in-memory twin of the DynamoDB store, for unit tests: the same answers to the same
//! calls (the contract suite in [`super::contract`] runs against both), plus a way to make
//! the next write fail, as a crashed or throttled call would.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, NaiveDate, Utc};

use crate::desk::{DeskLink, SlaLevel, Ticket};
use crate::engine::CampaignRef;
use crate::envelope::WabaSignal;
use crate::envelope::{Envelope, StatusUpdate};
use crate::report::Tally;
use crate::store::keys;
use crate::store::{
    CampaignReply, Commit, ConversationStart, CustomerItemKind, DeskContactErased, Erasure,
    ErasureState, EventRecord, Loaded, LogEntry, Removed, ScheduleStore, StatusChange, Store,
    StoreError, StoredSession, Suppressed, SuppressionChange, TOMBSTONE_DAYS, Unsettled, WabaWrite,
    Waiting, status_rank,
};
use crate::tenant::Tenant;

type Conversation = (String, String);

#[derive(Debug, Clone)]
struct QueueEntry {
    customer: String,
    ticket: Ticket,
    told_position: Option<u32>,
    alerted: Option<SlaLevel>,
}

/// A delivery record: the latest status of one outbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub status: String,
    pub error_codes: Vec<i64>,
}

#[derive(Default)]
struct Tables {
    tenants: BTreeMap<String, Tenant>,
    sessions: HashMap<Conversation, StoredSession>,
    records: BTreeMap<(String, String, String), EventRecord>,
    deliveries: HashMap<String, Delivery>,
    /// Per queue, in order of service (the DynamoDB sort key).
    queues: HashMap<(String, String), BTreeMap<String, QueueEntry>>,
    /// `(number, department, customer, taken at)`.
    taken: Vec<(String, String, String, DateTime<Utc>)>,
    desk_links: HashMap<Conversation, DeskLink>,
    openings: HashMap<String, BTreeMap<String, DateTime<Utc>>>,
    parked: Vec<Envelope>,
    ai_spend: HashMap<Conversation, u64>,
    /// Report counters per tenant and local day.
    reports: BTreeMap<(String, NaiveDate), Tally>,
    /// `(number, hashed event key)` -> until when.
    tombstones: HashMap<(String, String), DateTime<Utc>>,
    erasures: HashMap<(String, String), ErasureState>,
    /// Tombstones looked up (a read on the worker's path).
    tombstone_reads: usize,
    /// `(number, customer hash)` -> the entry.
    suppressions: BTreeMap<(String, String), Suppressed>,
    /// Suppression entries looked up.
    suppression_reads: usize,
    /// `(WABA#<id>, sort key)` -> attributes, the time attributes in decimal.
    waba: BTreeMap<(String, String), BTreeMap<String, String>>,
    /// `(number, customer hash)` -> a campaign send's reply pointer.
    reply_pointers: BTreeMap<(String, String), ReplyPointer>,
    /// Batch reads made when a message opened a conversation.
    conversation_start_reads: usize,
    /// `(number, campaign id, counter)` -> what replies and opt-outs added.
    campaign_counters: BTreeMap<(String, String, String), u64>,
    /// Fails the write this many writes from now (1: the next one).
    fail_write_in: Option<usize>,
}

/// A campaign send's reply pointer, as the sender writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyPointer {
    pub campaign: CampaignRef,
    pub sent_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub replied_at: Option<DateTime<Utc>>,
    pub opted_out_at: Option<DateTime<Utc>>,
}

/// The live pointer sent last among the customer's ids: its id and its entry.
fn live_pointer(
    tables: &Tables,
    phone_number_id: &str,
    customers: &[String],
    now: DateTime<Utc>,
) -> Option<(String, ReplyPointer)> {
    customers
        .iter()
        .filter_map(|customer| {
            let entry = (
                phone_number_id.to_owned(),
                keys::campaign_reply_entry(phone_number_id, customer),
            );
            let pointer = tables.reply_pointers.get(&entry)?;
            (pointer.expires_at > now).then(|| (customer.clone(), pointer.clone()))
        })
        .max_by_key(|(_, pointer)| pointer.sent_at)
}

/// Cheap to clone: clones share the tables, so a test keeps a handle on what the worker
/// wrote.
#[derive(Clone, Default)]
pub struct MemoryStore {
    tables: Arc<Mutex<Tables>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_tenant(self, tenant: Tenant) -> Self {
        self.lock()
            .tenants
            .insert(tenant.phone_number_id.clone(), tenant);
        self
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `n`th write from now fails as unavailable (and writes nothing).
    pub fn fail_write(&self, n: usize) {
        self.lock().fail_write_in = Some(n);
    }

    pub fn record(&self, phone_number_id: &str, customer: &str, key: &str) -> Option<EventRecord> {
        self.lock()
            .records
            .get(&(phone_number_id.into(), customer.into(), key.into()))
            .cloned()
    }

    pub fn session(&self, phone_number_id: &str, customer: &str) -> Option<StoredSession> {
        self.lock()
            .sessions
            .get(&(phone_number_id.into(), customer.into()))
            .cloned()
    }

    pub fn delivery(&self, wamid: &str) -> Option<Delivery> {
        self.lock().deliveries.get(wamid).cloned()
    }

    pub fn parked(&self) -> Vec<Envelope> {
        self.lock().parked.clone()
    }

    /// The suppression entry of one of the customer's ids.
    pub fn suppression(&self, phone_number_id: &str, id: &str) -> Option<Suppressed> {
        self.lock()
            .suppressions
            .get(&(
                phone_number_id.into(),
                keys::customer_hash(phone_number_id, id),
            ))
            .cloned()
    }

    /// How many suppression entries were looked up.
    pub fn suppression_reads(&self) -> usize {
        self.lock().suppression_reads
    }

    /// A `WABA#<waba_id>` item's attributes (times in decimal).
    pub fn waba_item(&self, waba_id: &str, sk: &str) -> Option<BTreeMap<String, String>> {
        self.lock()
            .waba
            .get(&(keys::waba(waba_id), sk.to_owned()))
            .cloned()
    }

    /// Writes a campaign send's reply pointer, as the campaign sender does (latest wins).
    pub fn put_campaign_reply(
        &self,
        phone_number_id: &str,
        customer: &str,
        campaign: CampaignRef,
        sent_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) {
        self.lock().reply_pointers.insert(
            (
                phone_number_id.into(),
                keys::campaign_reply_entry(phone_number_id, customer),
            ),
            ReplyPointer {
                campaign,
                sent_at,
                expires_at,
                replied_at: None,
                opted_out_at: None,
            },
        );
    }

    /// The reply pointer of one of the customer's ids.
    pub fn campaign_reply(&self, phone_number_id: &str, customer: &str) -> Option<ReplyPointer> {
        self.lock()
            .reply_pointers
            .get(&(
                phone_number_id.into(),
                keys::campaign_reply_entry(phone_number_id, customer),
            ))
            .cloned()
    }

    /// What replies and opt-outs added to a campaign's counter (`n_replied`...).
    pub fn campaign_counter(&self, phone_number_id: &str, campaign_id: &str, name: &str) -> u64 {
        self.lock()
            .campaign_counters
            .get(&(phone_number_id.into(), campaign_id.into(), name.into()))
            .copied()
            .unwrap_or(0)
    }

    /// How many batch reads were made for messages that opened a conversation.
    pub fn conversation_start_reads(&self) -> usize {
        self.lock().conversation_start_reads
    }

    /// How many times a tombstone was looked up.
    pub fn tombstone_reads(&self) -> usize {
        self.lock().tombstone_reads
    }

    pub fn queue(&self, phone_number_id: &str, department: &str) -> Vec<String> {
        self.lock()
            .queues
            .get(&(phone_number_id.into(), department.into()))
            .map(|q| q.values().map(|e| e.customer.clone()).collect())
            .unwrap_or_default()
    }

    /// Counts down to a scripted failure; every write calls this first.
    fn write(&self) -> Result<MutexGuard<'_, Tables>, StoreError> {
        let mut tables = self.lock();
        match tables.fail_write_in {
            Some(1) => {
                tables.fail_write_in = None;
                Err(StoreError::Unavailable("scripted write failure".into()))
            }
            Some(n) => {
                tables.fail_write_in = Some(n - 1);
                Ok(tables)
            }
            None => Ok(tables),
        }
    }
}

fn apply_suppression(tables: &mut Tables, phone_number_id: &str, change: &SuppressionChange) {
    for id in change.ids() {
        let entry = (
            phone_number_id.to_owned(),
            keys::customer_hash(phone_number_id, id),
        );
        match change {
            SuppressionChange::Suppress { source, since, .. } => {
                tables.suppressions.insert(
                    entry,
                    Suppressed {
                        since: *since,
                        source: *source,
                    },
                );
            }
            SuppressionChange::Allow { .. } => {
                tables.suppressions.remove(&entry);
            }
        }
    }
}

fn conversation(phone_number_id: &str, customer: &str) -> Conversation {
    (phone_number_id.to_owned(), customer.to_owned())
}

impl Store for MemoryStore {
    async fn load(
        &self,
        phone_number_id: &str,
        customer: &str,
        key: &str,
    ) -> Result<Loaded, StoreError> {
        Ok(Loaded {
            record: self.record(phone_number_id, customer, key),
            session: self.session(phone_number_id, customer),
        })
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<(), StoreError> {
        let mut tables = self.write()?;
        let record_key = (
            commit.phone_number_id.to_owned(),
            commit.customer.to_owned(),
            commit.key.to_owned(),
        );
        let at = conversation(commit.phone_number_id, commit.customer);
        let version = tables.sessions.get(&at).map(|s| s.version);
        let conflict = tables.records.contains_key(&record_key)
            || (commit.session.is_some() && version != commit.expected_version);
        if conflict {
            return Err(StoreError::Conflict {
                expected: commit.expected_version,
            });
        }
        tables.records.insert(record_key, commit.record.clone());
        if let Some(change) = commit.suppression {
            apply_suppression(&mut tables, commit.phone_number_id, change);
        }
        if let Some(count) = commit.report.filter(|count| !count.tally.is_empty()) {
            tables
                .reports
                .entry((commit.phone_number_id.to_owned(), count.day))
                .or_default()
                .add(count.tally);
        }
        if let Some(session) = commit.session {
            if let (true, Some(ai)) = (commit.ai_used, &session.ai) {
                tables.ai_spend.insert(at.clone(), ai.usage.input_tokens);
            }
            tables.sessions.insert(
                at,
                StoredSession {
                    session: session.clone(),
                    version: commit.expected_version.map_or(1, |v| v + 1),
                },
            );
        }
        Ok(())
    }

    async fn effect_done(
        &self,
        phone_number_id: &str,
        customer: &str,
        key: &str,
        sequence: usize,
        sent: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tables = self.write()?;
        let record = tables
            .records
            .get_mut(&(phone_number_id.into(), customer.into(), key.into()))
            .ok_or_else(|| StoreError::Corrupt(format!("no record of event {key} to mark")))?;
        record.done = sequence + 1;
        record.sent.extend(sent.map(str::to_owned));
        record.unsettled = None;
        Ok(())
    }

    async fn send_failed(
        &self,
        phone_number_id: &str,
        customer: &str,
        key: &str,
        sequence: usize,
        code: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut tables = self.write()?;
        let record = tables
            .records
            .get_mut(&(phone_number_id.into(), customer.into(), key.into()))
            .ok_or_else(|| StoreError::Corrupt(format!("no record of event {key} to mark")))?;
        record.done = sequence + 1;
        record.failed.insert(sequence, code);
        record.unsettled = None;
        Ok(())
    }

    async fn event_record(
        &self,
        phone_number_id: &str,
        customer: &str,
        key: &str,
    ) -> Result<Option<EventRecord>, StoreError> {
        Ok(self.record(phone_number_id, customer, key))
    }

    async fn mark_unsettled(
        &self,
        phone_number_id: &str,
        customer: &str,
        key: &str,
        sequence: usize,
        since: Option<DateTime<Utc>>,
    ) -> Result<Option<String>, StoreError> {
        let mut tables = self.write()?;
        let record = tables
            .records
            .get_mut(&(phone_number_id.into(), customer.into(), key.into()))
            .filter(|record| record.done == sequence)
            .ok_or(StoreError::Conflict { expected: None })?;
        if let Some(wamid) = record.settled.get(&sequence) {
            return Ok(Some(wamid.clone()));
        }
        record.unsettled = since.map(|since| Unsettled { sequence, since });
        Ok(None)
    }

    async fn settle(
        &self,
        phone_number_id: &str,
        customer: &str,
        key: &str,
        sequence: usize,
        wamid: &str,
    ) -> Result<(), StoreError> {
        let mut tables = self.write()?;
        if let Some(record) = tables
            .records
            .get_mut(&(phone_number_id.into(), customer.into(), key.into()))
            .filter(|record| record.done <= sequence)
        {
            record.settled.insert(sequence, wamid.to_owned());
        }
        Ok(())
    }

    async fn tenant(&self, phone_number_id: &str) -> Result<Option<Tenant>, StoreError> {
        Ok(self.lock().tenants.get(phone_number_id).cloned())
    }

    async fn update_status(
        &self,
        status: &StatusUpdate,
        _now: DateTime<Utc>,
        _expires_at: DateTime<Utc>,
    ) -> Result<StatusChange, StoreError> {
        let mut tables = self.write()?;
        let rank = status_rank(&status.status);
        let previous = tables.deliveries.get(&status.wamid).cloned();
        if previous
            .as_ref()
            .is_some_and(|p| status_rank(&p.status) >= rank)
        {
            return Ok(StatusChange::Ignored);
        }
        tables.deliveries.insert(
            status.wamid.clone(),
            Delivery {
                status: status.status.clone(),
                error_codes: status.error_codes.clone(),
            },
        );
        Ok(StatusChange::Applied {
            previous: previous.map(|p| p.status),
        })
    }

    async fn enqueue_human(
        &self,
        phone_number_id: &str,
        customer: &str,
        ticket: &Ticket,
        _expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tables = self.write()?;
        tables
            .queues
            .entry((phone_number_id.into(), ticket.department.clone()))
            .or_default()
            .entry(keys::queue_entry(ticket, customer))
            .or_insert_with(|| QueueEntry {
                customer: customer.into(),
                ticket: ticket.clone(),
                told_position: None,
                alerted: ticket.alerted,
            });
        Ok(())
    }

    async fn leave_queue(
        &self,
        phone_number_id: &str,
        customer: &str,
        ticket: &Ticket,
        taken_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let mut tables = self.write()?;
        if let Some(queue) = tables
            .queues
            .get_mut(&(phone_number_id.into(), ticket.department.clone()))
        {
            queue.remove(&keys::queue_entry(ticket, customer));
        }
        if let Some(at) = taken_at {
            tables.taken.push((
                phone_number_id.into(),
                ticket.department.clone(),
                customer.into(),
                at,
            ));
        }
        Ok(())
    }

    async fn queue_position(
        &self,
        phone_number_id: &str,
        customer: &str,
        ticket: &Ticket,
    ) -> Result<u32, StoreError> {
        let mine = keys::queue_entry(ticket, customer);
        let ahead = self
            .lock()
            .queues
            .get(&(phone_number_id.into(), ticket.department.clone()))
            .map_or(0, |q| q.range(..mine).count());
        Ok(ahead as u32 + 1)
    }

    async fn position_told(
        &self,
        phone_number_id: &str,
        customer: &str,
        ticket: &Ticket,
        position: u32,
    ) -> Result<bool, StoreError> {
        let mut tables = self.write()?;
        let entry = tables
            .queues
            .get_mut(&(phone_number_id.into(), ticket.department.clone()))
            .and_then(|q| q.get_mut(&keys::queue_entry(ticket, customer)));
        Ok(match entry {
            Some(entry) if entry.told_position.is_none_or(|told| told > position) => {
                entry.told_position = Some(position);
                true
            }
            _ => false,
        })
    }

    async fn mark_alerted(
        &self,
        phone_number_id: &str,
        customer: &str,
        ticket: &Ticket,
    ) -> Result<(), StoreError> {
        let mut tables = self.write()?;
        if let (Some(level), Some(entry)) = (
            ticket.alerted,
            tables
                .queues
                .get_mut(&(phone_number_id.into(), ticket.department.clone()))
                .and_then(|q| q.get_mut(&keys::queue_entry(ticket, customer))),
        ) {
            entry.alerted = Some(level);
        }
        Ok(())
    }

    async fn await_opening(
        &self,
        phone_number_id: &str,
        customer: &str,
        until: DateTime<Utc>,
        _expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write()?
            .openings
            .entry(phone_number_id.into())
            .or_default()
            .insert(customer.into(), until);
        Ok(())
    }

    async fn opening_done(&self, phone_number_id: &str, customer: &str) -> Result<(), StoreError> {
        if let Some(waiting) = self.write()?.openings.get_mut(phone_number_id) {
            waiting.remove(customer);
        }
        Ok(())
    }

    async fn recent_takes(
        &self,
        phone_number_id: &str,
        department: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        let mut takes: Vec<_> = self
            .lock()
            .taken
            .iter()
            .filter(|(pn, d, _, at)| pn == phone_number_id && d == department && *at >= since)
            .map(|(_, _, _, at)| *at)
            .collect();
        // The newest 20, newest first, as the DynamoDB query reads them.
        takes.sort_by(|a, b| b.cmp(a));
        takes.truncate(20);
        Ok(takes)
    }

    async fn desk_link(
        &self,
        phone_number_id: &str,
        customer: &str,
    ) -> Result<Option<DeskLink>, StoreError> {
        Ok(self
            .lock()
            .desk_links
            .get(&conversation(phone_number_id, customer))
            .cloned())
    }

    async fn save_desk_link(
        &self,
        phone_number_id: &str,
        customer: &str,
        link: &DeskLink,
        _expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write()?
            .desk_links
            .insert(conversation(phone_number_id, customer), link.clone());
        Ok(())
    }

    async fn forget_desk_link(
        &self,
        phone_number_id: &str,
        customer: &str,
    ) -> Result<(), StoreError> {
        self.write()?
            .desk_links
            .remove(&conversation(phone_number_id, customer));
        Ok(())
    }

    async fn transcript(
        &self,
        phone_number_id: &str,
        customer: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<LogEntry>, StoreError> {
        // Record times are kept to the millisecond, as in DynamoDB.
        let since = DateTime::from_timestamp_millis(since.timestamp_millis()).unwrap_or(since);
        let mut entries: Vec<LogEntry> = self
            .lock()
            .records
            .iter()
            .filter(|((pn, c, _), _)| pn == phone_number_id && c == customer)
            .flat_map(|((_, _, key), record)| record.log_entries(key))
            .filter(|entry| entry.at >= since)
            .collect();
        entries.sort_by_key(|entry| entry.at);
        Ok(entries)
    }

    async fn park(
        &self,
        envelope: &Envelope,
        _now: DateTime<Utc>,
        _expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if envelope.conversation().is_none() {
            return Err(StoreError::Corrupt(
                "an account signal belongs to no tenant's number: nothing to park it for".into(),
            ));
        }
        self.write()?.parked.push(envelope.clone());
        Ok(())
    }

    async fn suppressed(&self, phone_number_id: &str, ids: &[String]) -> Result<bool, StoreError> {
        let mut tables = self.lock();
        for id in ids {
            tables.suppression_reads += 1;
            let entry = (
                phone_number_id.to_owned(),
                keys::customer_hash(phone_number_id, id),
            );
            if tables.suppressions.contains_key(&entry) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn change_suppression(
        &self,
        phone_number_id: &str,
        change: &SuppressionChange,
    ) -> Result<(), StoreError> {
        let mut tables = self.write()?;
        apply_suppression(&mut tables, phone_number_id, change);
        Ok(())
    }

    async fn record_waba_signal(&self, signal: &WabaSignal) -> Result<bool, StoreError> {
        let write = WabaWrite::of(signal);
        let mut tables = self.write()?;
        let item = tables
            .waba
            .entry((keys::waba(&signal.waba_id), write.sk))
            .or_default();
        let later = item
            .get(write.at_attribute)
            .and_then(|at| at.parse::<i64>().ok())
            .is_some_and(|at| at > write.at);
        if later {
            return Ok(false);
        }
        item.insert(write.at_attribute.into(), write.at.to_string());
        for (name, value) in write.attributes {
            match value {
                Some(value) => item.insert(name.into(), value),
                None => item.remove(name),
            };
        }
        Ok(true)
    }

    async fn report_days(
        &self,
        phone_number_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, Tally)>, StoreError> {
        let tables = self.lock();
        let range = (phone_number_id.to_owned(), from)..=(phone_number_id.to_owned(), to);
        Ok(tables
            .reports
            .range(range)
            .map(|((_, day), tally)| (*day, tally.clone()))
            .collect())
    }

    async fn erased(
        &self,
        phone_number_id: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tables = self.lock();
        tables.tombstone_reads += 1;
        Ok(tables
            .tombstones
            .get(&(phone_number_id.into(), keys::tombstone_entry(key)))
            .is_some_and(|until| *until > now))
    }

    async fn conversation_start(
        &self,
        phone_number_id: &str,
        key: Option<&str>,
        customers: &[String],
        now: DateTime<Utc>,
    ) -> Result<ConversationStart, StoreError> {
        let mut tables = self.lock();
        tables.conversation_start_reads += 1;
        let erased = key.is_some_and(|key| {
            tables.tombstone_reads += 1;
            tables
                .tombstones
                .get(&(phone_number_id.into(), keys::tombstone_entry(key)))
                .is_some_and(|until| *until > now)
        });
        let reply = live_pointer(&tables, phone_number_id, customers, now)
            .filter(|(_, pointer)| pointer.replied_at.is_none())
            .map(|(customer, pointer)| CampaignReply {
                campaign: pointer.campaign,
                sent_at: pointer.sent_at,
                customer,
            });
        Ok(ConversationStart { erased, reply })
    }

    async fn campaign_replied(
        &self,
        phone_number_id: &str,
        reply: &CampaignReply,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tables = self.write()?;
        let entry = (
            phone_number_id.to_owned(),
            keys::campaign_reply_entry(phone_number_id, &reply.customer),
        );
        let Some(pointer) = tables
            .reply_pointers
            .get_mut(&entry)
            .filter(|p| p.campaign == reply.campaign && p.replied_at.is_none())
        else {
            return Ok(false);
        };
        pointer.replied_at = Some(now);
        *tables
            .campaign_counters
            .entry((
                phone_number_id.into(),
                reply.campaign.id.clone(),
                "n_replied".into(),
            ))
            .or_default() += 1;
        Ok(true)
    }

    async fn campaign_opted_out(
        &self,
        phone_number_id: &str,
        customers: &[String],
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let mut tables = self.write()?;
        let Some((customer, pointer)) = live_pointer(&tables, phone_number_id, customers, now)
            .filter(|(_, pointer)| pointer.opted_out_at.is_none())
        else {
            return Ok(None);
        };
        let entry = (
            phone_number_id.to_owned(),
            keys::campaign_reply_entry(phone_number_id, &customer),
        );
        if let Some(stored) = tables.reply_pointers.get_mut(&entry) {
            stored.opted_out_at = Some(now);
        }
        let id = pointer.campaign.id;
        *tables
            .campaign_counters
            .entry((phone_number_id.into(), id.clone(), "n_opted_out".into()))
            .or_default() += 1;
        Ok(Some(id))
    }

    async fn forget_delivery(&self, wamid: &str) -> Result<(), StoreError> {
        self.write()?.deliveries.remove(wamid);
        Ok(())
    }

    async fn erasure(
        &self,
        phone_number_id: &str,
        id: &str,
    ) -> Result<Option<ErasureState>, StoreError> {
        Ok(self
            .lock()
            .erasures
            .get(&(phone_number_id.into(), id.into()))
            .cloned())
    }

    async fn erase(&self, erasure: Erasure<'_>, now: DateTime<Utc>) -> Result<Removed, StoreError> {
        use CustomerItemKind as Kind;
        let mut tables = self.write()?;
        let number = erasure.tenant.phone_number_id.clone();
        let customer = erasure.customer.to_owned();
        let at = conversation(&number, &customer);
        let mut removed = Removed::new();
        let mut count = |kind: Kind, n: usize| {
            if n > 0 {
                *removed.entry(kind).or_default() += n as u64;
            }
        };
        let records: Vec<_> = tables
            .records
            .keys()
            .filter(|(pn, c, _)| *pn == number && *c == customer)
            .cloned()
            .collect();
        let mut event_keys: Vec<String> = records.iter().map(|(_, _, key)| key.clone()).collect();
        let mut wamids = Vec::new();
        for record_key in &records {
            let record = tables.records.remove(record_key).expect("listed");
            wamids.extend(record.sent);
            wamids.extend(record.settled.into_values());
        }
        count(Kind::Event, records.len());
        count(
            Kind::Session,
            usize::from(tables.sessions.remove(&at).is_some()),
        );
        count(
            Kind::DeskLink,
            usize::from(tables.desk_links.remove(&at).is_some()),
        );
        count(
            Kind::AiUsage,
            usize::from(tables.ai_spend.remove(&at).is_some()),
        );
        let deliveries = wamids
            .iter()
            .filter(|wamid| tables.deliveries.remove(*wamid).is_some())
            .count();
        count(Kind::Delivery, deliveries);
        let mut queued = 0;
        for ((pn, _), queue) in tables.queues.iter_mut() {
            if *pn == number {
                let before = queue.len();
                queue.retain(|_, entry| entry.customer != customer);
                queued += before - queue.len();
            }
        }
        count(Kind::QueueEntry, queued);
        let before = tables.taken.len();
        tables
            .taken
            .retain(|(pn, _, c, _)| !(*pn == number && *c == customer));
        count(Kind::Taken, before - tables.taken.len());
        let opening = tables
            .openings
            .get_mut(&number)
            .and_then(|waiting| waiting.remove(&customer));
        count(Kind::Opening, usize::from(opening.is_some()));
        let before = tables.parked.len();
        tables.parked.retain(|envelope| {
            let mine = envelope.conversation() == Some((number.as_str(), customer.as_str()));
            if mine {
                event_keys.push(envelope.idempotency_key());
            }
            !mine
        });
        count(Kind::Parked, before - tables.parked.len());
        let until = now + chrono::Duration::days(TOMBSTONE_DAYS);
        for key in event_keys {
            tables
                .tombstones
                .insert((number.clone(), keys::tombstone_entry(&key)), until);
        }
        let state = tables
            .erasures
            .entry((number, erasure.id.into()))
            .or_default();
        for (kind, n) in &removed {
            *state.removed.entry(*kind).or_default() += n;
        }
        Ok(removed)
    }

    async fn erasure_done(
        &self,
        erasure: Erasure<'_>,
        desk_contact: DeskContactErased,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tables = self.write()?;
        let state = tables
            .erasures
            .entry((erasure.tenant.phone_number_id.clone(), erasure.id.into()))
            .or_default();
        state.done_at = Some(now);
        state.desk_contact = Some(desk_contact);
        Ok(())
    }
}

impl ScheduleStore for MemoryStore {
    async fn tenant_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.lock().tenants.keys().cloned().collect())
    }

    async fn tenant(&self, phone_number_id: &str) -> Result<Option<Tenant>, StoreError> {
        Store::tenant(self, phone_number_id).await
    }

    async fn waiting(
        &self,
        phone_number_id: &str,
        department: &str,
    ) -> Result<(Vec<Waiting>, f64), StoreError> {
        let waiting = self
            .lock()
            .queues
            .get(&(phone_number_id.into(), department.into()))
            .map(|queue| {
                queue
                    .values()
                    .map(|entry| Waiting {
                        customer: entry.customer.clone(),
                        priority: entry.ticket.priority,
                        entered_at: entry.ticket.entered_at,
                        told_position: entry.told_position,
                        alerted: entry.alerted,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok((waiting, 0.0))
    }

    async fn awaiting_opening(
        &self,
        phone_number_id: &str,
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        Ok(self
            .lock()
            .openings
            .get(phone_number_id)
            .map(|w| w.iter().map(|(c, u)| (c.clone(), *u)).collect())
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_twin_keeps_the_store_contract() {
        super::super::contract::run_all(&super::MemoryStore::new(), "106540352242922").await;
    }
}
