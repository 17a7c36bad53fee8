//! Campaign reply pointers: which send a customer's next conversation answers, and the
//! replies and opt-outs counted on its campaign (`n_replied`, `n_opted_out`). The sender
//! writes the pointer when Meta takes a send (`campaign::dynamodb`); each count first marks
//! the pointer (conditional: once per send), then adds to the campaign item with a plain
//! `ADD`, like every campaign counter (a crash in between loses the count, never doubles it).

use chrono::{DateTime, Utc};

use super::customer::live;
use super::{DynamoStore, Item, applied, key, n, number, s, text};
use crate::campaign::dynamodb::{campaign_pk, campaign_sk};
use crate::engine::CampaignRef;
use crate::store::keys;
use crate::store::{CampaignReply, ConversationStart, StoreError};

const CAMPAIGN_ID: &str = "campaign_id";
const SEQ: &str = "seq";
const SENT_AT: &str = "sent_at";
const REPLIED_AT: &str = "replied_at";
const OPTED_OUT_AT: &str = "opted_out_at";

fn pointer_key(phone_number_id: &str, customer: &str) -> Item {
    key(
        keys::campaign_reply(phone_number_id),
        keys::campaign_reply_entry(phone_number_id, customer),
    )
}

/// A pointer as read: the send it names and whether it was counted already.
struct Pointer {
    reply: CampaignReply,
    replied: bool,
    opted_out: bool,
}

fn pointer(item: &Item, customer: &str) -> Result<Pointer, StoreError> {
    let sent_at = DateTime::from_timestamp(number(item, SENT_AT)?, 0)
        .ok_or_else(|| StoreError::Corrupt("`sent_at` is out of range".into()))?;
    let seq = u32::try_from(number(item, SEQ)?)
        .map_err(|_| StoreError::Corrupt("`seq` is out of range".into()))?;
    Ok(Pointer {
        reply: CampaignReply {
            campaign: CampaignRef {
                id: text(item, CAMPAIGN_ID)?.to_owned(),
                seq,
            },
            sent_at,
            customer: customer.to_owned(),
        },
        replied: item.contains_key(REPLIED_AT),
        opted_out: item.contains_key(OPTED_OUT_AT),
    })
}

impl DynamoStore {
    /// One eventually consistent batch read (half a unit an item): the pointers were
    /// written at the send, long before a reply, and the tombstone at the erasure.
    pub(super) async fn read_conversation_start(
        &self,
        phone_number_id: &str,
        event_key: Option<&str>,
        customers: &[String],
        now: DateTime<Utc>,
    ) -> Result<ConversationStart, StoreError> {
        let mut wanted: Vec<Item> = customers
            .iter()
            .map(|customer| pointer_key(phone_number_id, customer))
            .collect();
        if let Some(event_key) = event_key {
            wanted.push(key(
                keys::tombstone(phone_number_id),
                keys::tombstone_entry(event_key),
            ));
        }
        let mut items = self.get_items(&wanted, false).await?;
        let erased = match event_key {
            Some(_) => items.pop().flatten().is_some_and(|item| live(&item, now)),
            None => false,
        };
        let reply = latest_live(customers, items, now)?
            .filter(|pointer| !pointer.replied)
            .map(|pointer| pointer.reply);
        Ok(ConversationStart { erased, reply })
    }

    pub(super) async fn mark_replied(
        &self,
        phone_number_id: &str,
        reply: &CampaignReply,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let marked = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(pointer_key(phone_number_id, &reply.customer)))
            .update_expression("SET #replied = :now")
            .condition_expression(
                "#campaign = :campaign AND #seq = :seq AND attribute_not_exists(#replied)",
            )
            .expression_attribute_names("#replied", REPLIED_AT)
            .expression_attribute_names("#campaign", CAMPAIGN_ID)
            .expression_attribute_names("#seq", SEQ)
            .expression_attribute_values(":now", n(now.timestamp()))
            .expression_attribute_values(":campaign", s(&reply.campaign.id))
            .expression_attribute_values(":seq", n(reply.campaign.seq))
            .send()
            .await;
        if !applied(marked)? {
            return Ok(false);
        }
        self.count(phone_number_id, &reply.campaign.id, "n_replied")
            .await?;
        Ok(true)
    }

    pub(super) async fn mark_opted_out(
        &self,
        phone_number_id: &str,
        customers: &[String],
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let wanted: Vec<Item> = customers
            .iter()
            .map(|customer| pointer_key(phone_number_id, customer))
            .collect();
        let items = self.get_items(&wanted, false).await?;
        let Some(found) = latest_live(customers, items, now)?.filter(|p| !p.opted_out) else {
            return Ok(None);
        };
        let campaign = &found.reply.campaign;
        let marked = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(pointer_key(phone_number_id, &found.reply.customer)))
            .update_expression("SET #opted_out = :now")
            .condition_expression(
                "#campaign = :campaign AND #seq = :seq AND attribute_not_exists(#opted_out)",
            )
            .expression_attribute_names("#opted_out", OPTED_OUT_AT)
            .expression_attribute_names("#campaign", CAMPAIGN_ID)
            .expression_attribute_names("#seq", SEQ)
            .expression_attribute_values(":now", n(now.timestamp()))
            .expression_attribute_values(":campaign", s(&campaign.id))
            .expression_attribute_values(":seq", n(campaign.seq))
            .send()
            .await;
        if !applied(marked)? {
            return Ok(None);
        }
        self.count(phone_number_id, &campaign.id, "n_opted_out")
            .await?;
        Ok(Some(campaign.id.clone()))
    }

    /// Adds one to a campaign counter; a campaign deleted meanwhile has nothing to count.
    async fn count(
        &self,
        phone_number_id: &str,
        campaign_id: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        let added = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                campaign_pk(phone_number_id),
                campaign_sk(campaign_id),
            )))
            .update_expression("ADD #counter :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#counter", name)
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        applied(added).map(|_| ())
    }
}

/// The live pointer sent last among `items` (read in `customers`' order).
fn latest_live(
    customers: &[String],
    items: Vec<Option<Item>>,
    now: DateTime<Utc>,
) -> Result<Option<Pointer>, StoreError> {
    let mut latest: Option<Pointer> = None;
    for (customer, item) in customers.iter().zip(items) {
        let Some(item) = item.filter(|item| live(item, now)) else {
            continue;
        };
        let found = pointer(&item, customer)?;
        if latest
            .as_ref()
            .is_none_or(|l| found.reply.sent_at > l.reply.sent_at)
        {
            latest = Some(found);
        }
    }
    Ok(latest)
}
