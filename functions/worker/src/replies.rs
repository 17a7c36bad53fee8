//! Replies to campaigns. When a message opens a conversation (the customer's first, or one
//! after the session closed or timed out) the worker looks for the reply pointer the
//! campaign sender left, in the batch read that also looks for the event's tombstone when
//! there is no session: the new session names the send ([`shared::engine::CampaignRef`])
//! and, after the commit, the campaign counts the reply. An opt-out counts on the send of
//! the customer's live pointer. Each count is once per send (the pointer is marked);
//! a redelivered event finds its record and is not applied again. A message of an
//! ordinary conversation reads nothing more.

use chrono::{DateTime, Utc};
use shared::engine::{self, Input};
use shared::envelope::{InboundMessage, Payload};
use shared::store::{CampaignReply, ConversationStart, Store, StoredSession, keys};
use shared::tenant::Tenant;
use tokio::sync::Mutex;

use crate::counters::Counts;
use crate::erase::may_be_erased;
use crate::signals::customer_ids;
use crate::{Adapters, Worker, WorkerError};

/// The ids a customer's pointer may be under: their number (a Brazilian mobile's forms
/// share one key) and their business-scoped user id, each key once (a batch read refuses
/// a key asked twice).
pub(crate) fn pointer_ids(ids: &[String]) -> Vec<String> {
    let mut forms: Vec<String> = Vec::new();
    for form in ids.iter().map(|id| keys::campaign_reply_form(id)) {
        if !forms.contains(&form) {
            forms.push(form);
        }
    }
    forms
}

impl<A: Adapters> Worker<A> {
    /// What a new event reads before it is applied: the tombstone where a retry of an
    /// erased event could arrive unnoticed (see `erase`), and the reply pointer when a
    /// message opens a conversation; one round trip when both are wanted.
    pub(crate) async fn conversation_start(
        &self,
        payload: &Payload,
        key: &str,
        session: Option<&StoredSession>,
        tenant: &Tenant,
        now: DateTime<Utc>,
    ) -> Result<ConversationStart, WorkerError> {
        let number = tenant.phone_number_id.as_str();
        let tombstone = may_be_erased(payload, session).then_some(key);
        let opening = match payload {
            Payload::Message(message) if self.opens_conversation(message, session, tenant, now) => {
                Some(message)
            }
            _ => None,
        };
        let Some(message) = opening else {
            let erased = match tombstone {
                Some(key) => self.ports.store.erased(number, key, now).await?,
                None => false,
            };
            return Ok(ConversationStart {
                erased,
                reply: None,
            });
        };
        let ids = pointer_ids(&customer_ids(message));
        Ok(self
            .ports
            .store
            .conversation_start(number, tombstone, &ids, now)
            .await?)
    }

    /// A fresh message (answered, not stale) that the engine will take as a conversation's
    /// first.
    fn opens_conversation(
        &self,
        message: &InboundMessage,
        session: Option<&StoredSession>,
        tenant: &Tenant,
        now: DateTime<Utc>,
    ) -> bool {
        let sent_at = DateTime::from_timestamp(message.timestamp, 0).unwrap_or(now);
        now - sent_at <= self.config.stale_after
            && engine::opens_conversation(
                session.map(|s| &s.session),
                &Input::from_message(message),
                message.timestamp,
                now,
                tenant,
            )
    }

    /// Counts the reply on its campaign once the session naming it is committed.
    pub(crate) async fn count_reply(
        &self,
        number: &str,
        reply: &CampaignReply,
        now: DateTime<Utc>,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        if self
            .ports
            .store
            .campaign_replied(number, reply, now)
            .await?
        {
            counts.lock().await.campaign_replies += 1;
            tracing::info!(campaign = %reply.campaign.id, "campaign reply counted");
        }
        Ok(())
    }

    /// Counts an opt-out on the campaign of the customer's live reply pointer, if any.
    pub(crate) async fn count_opt_out(
        &self,
        number: &str,
        ids: &[String],
        now: DateTime<Utc>,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        let ids = pointer_ids(ids);
        if let Some(campaign) = self
            .ports
            .store
            .campaign_opted_out(number, &ids, now)
            .await?
        {
            counts.lock().await.campaign_opt_outs += 1;
            tracing::info!(%campaign, "campaign opt-out counted");
        }
        Ok(())
    }
}
