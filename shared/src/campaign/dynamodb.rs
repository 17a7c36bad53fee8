//! DynamoDB adapter of the campaign ports, on the single table (items listed in
//! [`crate::campaign`]). Every move of a recipient is a conditional update on its state;
//! counters are `ADD`s on the campaign item (plain updates, so the senders' and the
//! worker's writes to that one item never conflict as transactions would).

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, TimeDelta, Utc};

use super::pacing::{Slowdown, daily_grant, daily_window, hour_of};
use super::{
    Batch, Campaign, CampaignStore, Counters, DailyCount, DeliveryUpdate, Due, Mark, Pacer,
    Recipient, RecipientState, ReplyPointer, Signal, Signals, State, Transition, delivery_counters,
    due_key,
};
use crate::store::dynamodb::{
    BatchRead, Item, applied, batch_get, key, n, number, s, suppression_item, text, unavailable,
};
use crate::store::keys::{self, EXPIRES_AT, PK, SK};
use crate::store::{StoreError, SuppressionSource, status_rank};

const DUE_PARTITION: &str = "CAMPAIGNS_DUE";
const UNPROCESSED_ATTEMPTS: u32 = 4;
const MAX_UNPROCESSED_WAIT: std::time::Duration = std::time::Duration::from_millis(500);
/// Optimistic attempts at the hour counter of the messaging limit.
const DAILY_ATTEMPTS: u32 = 5;
/// Pacing items hold no customer data; they go soon after they stop mattering.
const SLOT_KEPT: TimeDelta = TimeDelta::hours(1);
const HOUR_KEPT: TimeDelta = TimeDelta::days(2);

pub fn campaign_pk(phone_number_id: &str) -> String {
    format!("CAMPAIGN#{phone_number_id}")
}

pub fn campaign_sk(campaign_id: &str) -> String {
    format!("C#{campaign_id}")
}

pub fn recipients_pk(phone_number_id: &str, campaign_id: &str) -> String {
    format!("CAMPAIGN#{phone_number_id}#{campaign_id}")
}

/// Sorts by seq: eight digits hold the largest audience.
pub fn recipient_sk(seq: u32) -> String {
    format!("R#{seq:08}")
}

fn pace_pk(phone_number_id: &str) -> String {
    format!("PACE#{phone_number_id}")
}

fn daily_pk(portfolio: &str) -> String {
    format!("DAILY#{portfolio}")
}

fn hour_sk(hour: i64) -> String {
    format!("H#{hour:010}")
}

pub fn due_pk() -> &'static str {
    DUE_PARTITION
}

#[derive(Clone)]
pub struct DynamoCampaigns {
    client: Client,
    table: String,
}

impl DynamoCampaigns {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Items by key; absent items are simply not returned.
    async fn batch_get(&self, keys: Vec<Item>, consistent: bool) -> Result<Vec<Item>, StoreError> {
        let read = BatchRead {
            consistent,
            attempts: UNPROCESSED_ATTEMPTS,
            max_wait: MAX_UNPROCESSED_WAIT,
        };
        batch_get(&self.client, &self.table, &keys, read).await
    }

    /// The sending system's move in the tenant's audit log, as the platform writes it.
    async fn record_move(
        &self,
        campaign: &Campaign,
        to: State,
        change: &Transition,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut detail = serde_json::json!({"from": campaign.state, "to": to});
        if let Some(reason) = &change.reason {
            detail["reason"] = reason.as_str().into();
        }
        let mut item = key(
            keys::audit(&campaign.phone_number_id),
            keys::audit_entry(now, fastrand::u32(..)),
        );
        item.extend([
            ("actor".to_owned(), s(format!("system:{}", change.by))),
            ("action".to_owned(), s(super::system_action(to))),
            ("target".to_owned(), s(&campaign.id)),
            ("detail".to_owned(), s(detail.to_string())),
            (
                EXPIRES_AT.to_owned(),
                n((now + keys::AUDIT_KEPT).timestamp()),
            ),
        ]);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// The send's reply pointer, replacing an earlier send's (and its counted marks).
    async fn put_reply_pointer(
        &self,
        batch: &Batch,
        seq: u32,
        reply: &ReplyPointer,
    ) -> Result<(), StoreError> {
        let pn = &batch.phone_number_id;
        let mut item = key(
            keys::campaign_reply(pn),
            keys::campaign_reply_entry(pn, &reply.customer),
        );
        item.insert("campaign_id".into(), s(batch.campaign_id.clone()));
        item.insert("seq".into(), n(seq));
        item.insert("sent_at".into(), n(reply.sent_at.timestamp()));
        item.insert(EXPIRES_AT.into(), n(reply.expires_at.timestamp()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Every number quality signal of the account (`NUMBER#<display digits>` items).
    async fn number_signals(&self, waba: &str) -> Result<Vec<Signal>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :number)")
            .expression_attribute_values(":pk", s(waba))
            .expression_attribute_values(":number", s(keys::waba_number("")))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output
            .items()
            .iter()
            .filter_map(|item| signal_from(item, "quality_event"))
            .collect())
    }

    async fn add_counters(
        &self,
        phone_number_id: &str,
        campaign_id: &str,
        names: &[String],
    ) -> Result<(), StoreError> {
        if names.is_empty() {
            return Ok(());
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                campaign_pk(phone_number_id),
                campaign_sk(campaign_id),
            )))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1));
        let mut adds = Vec::new();
        for (index, name) in names.iter().enumerate() {
            update = update.expression_attribute_names(format!("#c{index}"), name);
            adds.push(format!("#c{index} :one"));
        }
        let result = update
            .update_expression(format!("ADD {}", adds.join(", ")))
            .send()
            .await;
        // A campaign deleted meanwhile has nothing left to count.
        applied(result).map(|_| ())
    }
}

fn optional_number(item: &Item, name: &str) -> Option<i64> {
    number(item, name).ok()
}

fn counter(item: &Item, name: &str) -> u64 {
    optional_number(item, name).map_or(0, |v| u64::try_from(v).unwrap_or(0))
}

fn epoch(seconds: Option<i64>) -> Option<DateTime<Utc>> {
    seconds.and_then(|s| DateTime::from_timestamp(s, 0))
}

fn campaign_from(phone_number_id: &str, item: &Item) -> Result<Campaign, StoreError> {
    let sk = text(item, SK)?;
    let state = text(item, "state")?;
    Ok(Campaign {
        phone_number_id: phone_number_id.to_owned(),
        id: sk.strip_prefix("C#").unwrap_or(sk).to_owned(),
        state: state
            .parse::<State>()
            .ok()
            .ok_or_else(|| StoreError::Corrupt(format!("campaign state `{state}`")))?,
        version: u64::try_from(number(item, "version")?).unwrap_or(0),
        template_name: text(item, "template_name")?.to_owned(),
        template_language: text(item, "template_language")?.to_owned(),
        start_at: epoch(optional_number(item, "start_at")),
        business_hours_only: matches!(
            item.get("business_hours_only"),
            Some(AttributeValue::Bool(true))
        ),
        started_at: epoch(optional_number(item, "started_at")),
        audience_size: u32::try_from(counter(item, "audience_size")).unwrap_or(u32::MAX),
        counters: Counters {
            queued: counter(item, "n_queued"),
            done: counter(item, "n_done"),
            failed: counter(item, "n_failed"),
            window_done: counter(item, "window_done"),
            window_failed: counter(item, "window_failed"),
        },
    })
}

/// A signal item: its event under `event_attribute`, any restriction, and when.
fn signal_from(item: &Item, event_attribute: &str) -> Option<Signal> {
    let event = text(item, event_attribute).ok()?.to_owned();
    let detail = match item.get("restriction").or_else(|| item.get("reason")) {
        Some(AttributeValue::S(text)) => Some(text.clone()),
        Some(AttributeValue::Ss(texts)) => Some(texts.join(",")),
        Some(AttributeValue::L(list)) => Some(
            list.iter()
                .filter_map(|v| v.as_s().ok().cloned())
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => None,
    };
    let at = match item.get("at") {
        Some(AttributeValue::N(seconds)) => seconds.parse().ok().and_then(|s| epoch(Some(s))),
        Some(AttributeValue::S(text)) => {
            DateTime::parse_from_rfc3339(text).ok().map(|t| t.to_utc())
        }
        _ => None,
    };
    Some(Signal {
        event,
        detail,
        at: at.unwrap_or(DateTime::UNIX_EPOCH),
    })
}

fn recipient_from(item: &Item) -> Result<Recipient, StoreError> {
    let sk = text(item, SK)?;
    let seq = sk
        .strip_prefix("R#")
        .and_then(|seq| seq.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("recipient key `{sk}`")))?;
    let params = match item.get("params") {
        Some(AttributeValue::S(json)) => serde_json::from_str(json)
            .map_err(|e| StoreError::Corrupt(format!("recipient params: {e}")))?,
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| v.as_s().cloned())
            .collect::<Result<_, _>>()
            .map_err(|_| StoreError::Corrupt("recipient params: not strings".into()))?,
        _ => Vec::new(),
    };
    let state = text(item, "state")?;
    Ok(Recipient {
        seq,
        customer: text(item, "customer")?.to_owned(),
        params,
        state: RecipientState::parse(state)
            .ok_or_else(|| StoreError::Corrupt(format!("recipient state `{state}`")))?,
        attempts: u32::try_from(counter(item, "attempts")).unwrap_or(u32::MAX),
    })
}

impl CampaignStore for DynamoCampaigns {
    async fn campaign(&self, pn: &str, id: &str) -> Result<Option<Campaign>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(campaign_pk(pn), campaign_sk(id))))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output.item.map(|item| campaign_from(pn, &item)).transpose()
    }

    async fn signals(
        &self,
        waba_id: &str,
        campaign: &Campaign,
    ) -> Result<(Signals, Option<Slowdown>), StoreError> {
        let waba = keys::waba(waba_id);
        let pn = &campaign.phone_number_id;
        let template_sk = keys::waba_template(&campaign.template_name, &campaign.template_language);
        let wanted = vec![
            key(waba.clone(), template_sk.clone()),
            key(waba.clone(), keys::WABA_ACCOUNT),
            key(pace_pk(pn), "SLOWDOWN"),
        ];
        let (items, numbers) =
            tokio::try_join!(self.batch_get(wanted, false), self.number_signals(&waba))?;
        let mut signals = Signals {
            numbers,
            ..Signals::default()
        };
        let mut slowdown = None;
        for item in &items {
            match text(item, SK)? {
                sk if sk == template_sk => signals.template = signal_from(item, "status"),
                keys::WABA_ACCOUNT => signals.account = signal_from(item, "event"),
                "SLOWDOWN" => {
                    let factor = match item.get("factor") {
                        Some(AttributeValue::N(f)) => f.parse().unwrap_or(1.0),
                        _ => 1.0,
                    };
                    let until = optional_number(item, "until")
                        .and_then(DateTime::from_timestamp_millis)
                        .unwrap_or(DateTime::UNIX_EPOCH);
                    slowdown = Some(Slowdown { factor, until });
                }
                _ => {}
            }
        }
        Ok((signals, slowdown))
    }

    async fn suppressed(&self, pn: &str, hashes: &[String]) -> Result<HashSet<String>, StoreError> {
        let keys = hashes
            .iter()
            .collect::<HashSet<_>>()
            .into_iter()
            .map(|hash| key(keys::suppression(pn), hash.clone()))
            .collect();
        let items = self.batch_get(keys, false).await?;
        items
            .iter()
            .map(|item| text(item, SK).map(str::to_owned))
            .collect()
    }

    async fn recipients(&self, batch: &Batch) -> Result<Vec<Recipient>, StoreError> {
        let mut recipients = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(
                    ":pk",
                    s(recipients_pk(&batch.phone_number_id, &batch.campaign_id)),
                )
                .expression_attribute_values(":from", s(recipient_sk(batch.from_seq)))
                .expression_attribute_values(":to", s(recipient_sk(batch.to_seq)))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            for item in output.items() {
                recipients.push(recipient_from(item)?);
            }
            match output.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => return Ok(recipients),
            }
        }
    }

    async fn mark_sending(
        &self,
        batch: &Batch,
        seq: u32,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                recipients_pk(&batch.phone_number_id, &batch.campaign_id),
                recipient_sk(seq),
            )))
            .update_expression("SET #state = :sending, attempt_at = :now")
            .condition_expression("#state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sending", s(RecipientState::Sending.as_str()))
            .expression_attribute_values(":pending", s(RecipientState::Pending.as_str()))
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await;
        applied(result)
    }

    async fn mark(
        &self,
        batch: &Batch,
        seq: u32,
        from: RecipientState,
        mark: &Mark,
    ) -> Result<bool, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                recipients_pk(&batch.phone_number_id, &batch.campaign_id),
                recipient_sk(seq),
            )))
            .condition_expression("#state = :from")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":from", s(from.as_str()));
        update = match mark {
            Mark::Sent { wamid, .. } => update
                .update_expression("SET #state = :to, wamid = :wamid")
                .expression_attribute_values(":to", s(RecipientState::Sent.as_str()))
                .expression_attribute_values(":wamid", s(wamid.clone())),
            Mark::Failed { code } => {
                let update =
                    update.expression_attribute_values(":to", s(RecipientState::Failed.as_str()));
                match code {
                    Some(code) => update
                        .update_expression("SET #state = :to, error_code = :code")
                        .expression_attribute_values(":code", n(code)),
                    None => update.update_expression("SET #state = :to"),
                }
            }
            Mark::Suppressed => update
                .update_expression("SET #state = :to")
                .expression_attribute_values(":to", s(RecipientState::Skipped.as_str())),
        };
        if !applied(update.send().await)? {
            return Ok(false);
        }
        if let Mark::Sent { reply, .. } = mark {
            self.put_reply_pointer(batch, seq, reply).await?;
        }
        self.add_counters(&batch.phone_number_id, &batch.campaign_id, &mark.counters())
            .await?;
        Ok(true)
    }

    async fn release(&self, batch: &Batch, seq: u32, attempts: u32) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                recipients_pk(&batch.phone_number_id, &batch.campaign_id),
                recipient_sk(seq),
            )))
            .update_expression("SET #state = :pending, attempts = :attempts")
            .condition_expression("#state = :sending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s(RecipientState::Pending.as_str()))
            .expression_attribute_values(":sending", s(RecipientState::Sending.as_str()))
            .expression_attribute_values(":attempts", n(attempts))
            .send()
            .await;
        applied(result).map(|_| ())
    }

    async fn transition(
        &self,
        campaign: &Campaign,
        to: State,
        change: Transition,
    ) -> Result<bool, StoreError> {
        let mut sets = vec!["#state = :to", "version = :next"];
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                campaign_pk(&campaign.phone_number_id),
                campaign_sk(&campaign.id),
            )))
            .condition_expression("#state = :from AND version = :version")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":from", s(campaign.state.as_str()))
            .expression_attribute_values(":version", n(campaign.version))
            .expression_attribute_values(":next", n(campaign.version + 1));
        if let Some(reason) = &change.reason {
            sets.push("paused_reason = :reason");
            update = update.expression_attribute_values(":reason", s(reason));
        }
        if let Some(at) = change.started_at {
            sets.push("started_at = :started");
            update = update.expression_attribute_values(":started", n(at.timestamp()));
        }
        if let Some(queued) = change.queued {
            sets.push("n_queued = :queued");
            update = update.expression_attribute_values(":queued", n(queued));
        }
        let result = update
            .update_expression(format!("SET {}", sets.join(", ")))
            .send()
            .await;
        if !applied(result)? {
            return Ok(false);
        }
        // After the move, not in a transaction with it: the campaign item takes the
        // senders' counter updates all the time, which would cancel a transaction.
        self.record_move(campaign, to, &change).await?;
        Ok(true)
    }

    async fn move_failure_window(&self, campaign: &Campaign) -> Result<(), StoreError> {
        let counters = campaign.counters;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                campaign_pk(&campaign.phone_number_id),
                campaign_sk(&campaign.id),
            )))
            .update_expression("SET window_done = :done, window_failed = :failed")
            .condition_expression("attribute_not_exists(window_done) OR window_done = :old")
            .expression_attribute_values(":done", n(counters.done))
            .expression_attribute_values(":failed", n(counters.failed))
            .expression_attribute_values(":old", n(counters.window_done))
            .send()
            .await;
        applied(result).map(|_| ())
    }

    async fn due(&self, now: DateTime<Utc>) -> Result<Vec<Due>, StoreError> {
        let mut due = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk < :until")
                .expression_attribute_values(":pk", s(DUE_PARTITION))
                .expression_attribute_values(":until", s(format!("{:010}$", now.timestamp())))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            for item in output.items() {
                let sort_key = text(item, SK)?;
                let mut parts = sort_key.splitn(3, '#');
                let (Some(_), Some(pn), Some(id)) = (parts.next(), parts.next(), parts.next())
                else {
                    return Err(StoreError::Corrupt(format!("due key `{sort_key}`")));
                };
                due.push(Due {
                    phone_number_id: pn.to_owned(),
                    campaign_id: id.to_owned(),
                    sort_key: sort_key.to_owned(),
                });
            }
            match output.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => return Ok(due),
            }
        }
    }

    async fn suppress(
        &self,
        pn: &str,
        customer: &str,
        since: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let entry = key(keys::suppression(pn), keys::customer_hash(pn, customer));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(suppression_item(
                entry,
                SuppressionSource::Meta,
                since,
            )))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn due_at(&self, pn: &str, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(key(
                DUE_PARTITION.to_owned(),
                due_key(at.timestamp(), pn, id),
            )))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn forget_due(&self, due: &Due) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(DUE_PARTITION.to_owned(), due.sort_key.clone())))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn delivery(&self, update: &DeliveryUpdate<'_>) -> Result<bool, StoreError> {
        let rank = status_rank(update.status);
        let recipient = key(
            recipients_pk(update.phone_number_id, update.campaign_id),
            recipient_sk(update.seq),
        );
        // One conditional update moves the recipient's delivery forward and returns what
        // it was: the counters follow from it, with no read before.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(recipient.clone()))
            .update_expression("SET delivery = :status, delivery_rank = :rank")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(delivery_rank) OR delivery_rank < :rank)",
            )
            .expression_attribute_values(":status", s(update.status))
            .expression_attribute_values(":rank", n(rank))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let old = match result {
            Ok(output) => output.attributes.unwrap_or_default(),
            Err(error) => {
                return match applied::<(), _, _>(Err(error)) {
                    Ok(_) => Ok(false),
                    Err(error) => Err(error),
                };
            }
        };
        let before = u8::try_from(counter(&old, "delivery_rank")).unwrap_or(0);
        let mut names = delivery_counters(update, before);
        if text(&old, "state").ok() == Some(RecipientState::Sending.as_str()) {
            // A send whose outcome the sender did not learn: its status settles it.
            let (to, counted) = if update.status == "failed" {
                (RecipientState::Failed, None)
            } else {
                (RecipientState::Sent, Some("n_sent"))
            };
            let mut settle = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(recipient))
                .update_expression("SET #state = :to, wamid = :wamid")
                .condition_expression("#state = :sending")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":to", s(to.as_str()))
                .expression_attribute_values(":sending", s(RecipientState::Sending.as_str()))
                .expression_attribute_values(":wamid", s(update.wamid));
            if let Some(code) = update.error_code.filter(|_| to == RecipientState::Failed) {
                settle = settle
                    .update_expression("SET #state = :to, wamid = :wamid, error_code = :code")
                    .expression_attribute_values(":code", n(code));
            }
            if applied(settle.send().await)? {
                names.extend(counted.map(str::to_owned));
                names.push("n_done".to_owned());
            }
        }
        self.add_counters(update.phone_number_id, update.campaign_id, &names)
            .await?;
        Ok(true)
    }
}

impl Pacer for DynamoCampaigns {
    async fn take(&self, pn: &str, slot: u64, wanted: u32, budget: u32) -> Result<u32, StoreError> {
        let expires = super::pacing::slot_start(slot) + SLOT_KEPT;
        // All that is wanted, else one: two calls at most, a full slot answers 0.
        for take in [wanted, 1] {
            if take == 0 || take > budget {
                continue;
            }
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(pace_pk(pn), format!("S#{slot}"))))
                .update_expression("ADD n :take SET #expires = :expires")
                .condition_expression("attribute_not_exists(n) OR n <= :most")
                .expression_attribute_names("#expires", EXPIRES_AT)
                .expression_attribute_values(":take", n(take))
                .expression_attribute_values(":most", n(budget - take))
                .expression_attribute_values(":expires", n(expires.timestamp()))
                .send()
                .await;
            if applied(result)? {
                return Ok(take);
            }
            if take == 1 {
                break;
            }
        }
        Ok(0)
    }

    async fn slow_down(&self, pn: &str, slowdown: Slowdown) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(pace_pk(pn)))
            .item(SK, s("SLOWDOWN"))
            .item("factor", n(slowdown.factor))
            .item("until", n(slowdown.until.timestamp_millis()))
            .item(EXPIRES_AT, n((slowdown.until + SLOT_KEPT).timestamp()))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn take_daily(
        &self,
        portfolio: &str,
        now: DateTime<Utc>,
        wanted: u32,
        limit: Option<u32>,
    ) -> Result<u32, StoreError> {
        if limit.is_none() || wanted == 0 {
            return Ok(wanted);
        }
        let window = daily_window(now);
        let current = hour_of(now);
        for _ in 0..DAILY_ATTEMPTS {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(daily_pk(portfolio)))
                .expression_attribute_values(":from", s(hour_sk(*window.start())))
                .expression_attribute_values(":to", s(hour_sk(*window.end())))
                .consistent_read(true)
                .send()
                .await
                .map_err(unavailable)?;
            let counts: HashMap<String, u64> = output
                .items()
                .iter()
                .filter_map(|item| Some((text(item, SK).ok()?.to_owned(), counter(item, "n"))))
                .collect();
            let used: u64 = counts.values().sum();
            let got = daily_grant(limit, used, wanted);
            if got == 0 {
                return Ok(0);
            }
            // Optimistic on the current hour as read: only it changes within the window.
            let seen = counts.get(&hour_sk(current)).copied();
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(daily_pk(portfolio), hour_sk(current))))
                .update_expression("ADD n :got SET #expires = :expires")
                .expression_attribute_names("#expires", EXPIRES_AT)
                .expression_attribute_values(":got", n(got))
                .expression_attribute_values(":expires", n((now + HOUR_KEPT).timestamp()));
            update = match seen {
                Some(seen) => update
                    .condition_expression("n = :seen")
                    .expression_attribute_values(":seen", n(seen)),
                None => update.condition_expression("attribute_not_exists(n)"),
            };
            if applied(update.send().await)? {
                return Ok(got);
            }
        }
        Err(StoreError::Unavailable(
            "the messaging limit's counter kept changing".into(),
        ))
    }
}

impl DailyCount for DynamoCampaigns {
    async fn count_daily(
        &self,
        portfolio: &str,
        now: DateTime<Utc>,
        count: u32,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(daily_pk(portfolio), hour_sk(hour_of(now)))))
            .update_expression("ADD n :count SET #expires = :expires")
            .expression_attribute_names("#expires", EXPIRES_AT)
            .expression_attribute_values(":count", n(count))
            .expression_attribute_values(":expires", n((now + HOUR_KEPT).timestamp()))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
