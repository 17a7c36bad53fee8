//! Opting out and Meta's signals: the suppression list changed by an opt-out word (in the
//! event's commit) or by Meta's `user_preferences` webhook, and what Meta says about the
//! WhatsApp Business Account (template status and quality, number quality, restrictions)
//! kept on its `WABA#` items for the campaign sender, logged, counted and, when campaigns
//! must stop, published to the supervisors' alert topic.

use chrono::{DateTime, Utc};
use shared::desk::AlertTopic;
use shared::engine::Effect;
use shared::envelope::{InboundMessage, PreferenceChange, Signal, WabaSignal};
use shared::store::{Store, SuppressionChange, SuppressionSource};
use tokio::sync::Mutex;

use crate::counters::Counts;
use crate::{Adapters, Worker, WorkerError};

/// Every id the customer of a message is known by: the conversation's, and Meta's `from`
/// (their number) and `from_user_id` (their business-scoped user id) when the message has
/// them. An opt-out holds for each, whichever the customer writes or is sent to with.
pub(crate) fn customer_ids(message: &InboundMessage) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Ids {
        from: Option<String>,
        from_user_id: Option<String>,
    }
    let mut ids = vec![message.customer.clone()];
    if let Ok(raw) = serde_json::from_str::<Ids>(message.raw.get()) {
        for id in [raw.from, raw.from_user_id].into_iter().flatten() {
            if !id.is_empty() && !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids
}

/// Takes the engine's opt-out or opt-in out of the effects (the commit carries it out, not
/// the outbox: no write to mark it done) as the change to the suppression list.
pub(crate) fn suppression_change(
    effects: &mut Vec<Effect>,
    ids: Vec<String>,
    now: DateTime<Utc>,
) -> Option<SuppressionChange> {
    let change = effects.iter().find_map(|effect| match effect {
        Effect::OptOut => Some(true),
        Effect::OptIn => Some(false),
        _ => None,
    })?;
    effects.retain(|effect| !matches!(effect, Effect::OptOut | Effect::OptIn));
    Some(match change {
        true => SuppressionChange::Suppress {
            ids,
            source: SuppressionSource::Words,
            since: now,
        },
        false => SuppressionChange::Allow { ids },
    })
}

/// Whether a signal is kept on its `WABA#` item. Of the account's updates only those about
/// sending (restrictions, bans, violations, the account's removal or return): a partner
/// or pricing update must not overwrite a restriction the sender reads.
pub(crate) fn kept(signal: &Signal) -> bool {
    match signal {
        Signal::Account { event, .. } => matches!(
            event.as_str(),
            "ACCOUNT_RESTRICTION"
                | "DISABLED_UPDATE"
                | "ACCOUNT_VIOLATION"
                | "ACCOUNT_DELETED"
                | "ACCOUNT_OFFBOARDED"
                | "ACCOUNT_RECONNECTED"
        ),
        _ => true,
    }
}

/// Whether supervisors hear of a signal: campaigns must stop or slow down. A flagged or
/// downgraded number, an account restricted, disabled or in violation, a template paused,
/// disabled or flagged.
pub(crate) fn alarming(signal: &Signal) -> bool {
    match signal {
        Signal::TemplateStatus { event, .. } => {
            matches!(event.as_str(), "PAUSED" | "DISABLED" | "FLAGGED")
        }
        Signal::TemplateQuality { .. } => false,
        Signal::NumberQuality { event, .. } => matches!(event.as_str(), "FLAGGED" | "DOWNGRADE"),
        Signal::Account { event, .. } => matches!(
            event.as_str(),
            "ACCOUNT_RESTRICTION" | "DISABLED_UPDATE" | "ACCOUNT_VIOLATION" | "ACCOUNT_DELETED"
        ),
    }
}

impl<A: Adapters> Worker<A> {
    /// Meta's marketing stop or resume: on or off the tenant's suppression list, by the
    /// number and the business-scoped user id. Puts and deletes: a redelivery changes
    /// nothing more.
    pub(crate) async fn apply_preference(
        &self,
        preference: &PreferenceChange,
        key: &str,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        let mut ids = vec![preference.customer.clone()];
        ids.extend(preference.user_id.clone());
        let change = match preference.value.to_ascii_lowercase().as_str() {
            "stop" => SuppressionChange::Suppress {
                ids,
                source: SuppressionSource::Meta,
                since: DateTime::from_timestamp(preference.timestamp, 0)
                    .filter(|_| preference.timestamp > 0)
                    .unwrap_or_else(|| self.now()),
            },
            // Resumed, or signed up through the business's sign-up link.
            "resume" | "signup" => SuppressionChange::Allow { ids },
            _ => {
                tracing::warn!(value = %preference.value, category = %preference.category, "marketing preference of an unknown kind; the list is unchanged");
                return Ok(());
            }
        };
        if let Some(tenant) = self.tenant(&preference.phone_number_id).await? {
            let event = crate::publish::preference_event(preference, key, &change, self.now());
            self.publish_wanted(&tenant, event, counts).await?;
        }
        self.ports
            .store
            .change_suppression(&preference.phone_number_id, &change)
            .await?;
        if let SuppressionChange::Suppress { ids, .. } = &change {
            let now = self.now();
            self.count_opt_out(&preference.phone_number_id, ids, now, counts)
                .await?;
        }
        tracing::info!(
            value = %preference.value,
            category = %preference.category,
            "customer's marketing preference applied to the suppression list"
        );
        counts.lock().await.preferences += 1;
        Ok(())
    }

    /// Keeps the signal on its `WABA#` item unless a later one is there, and alerts the
    /// supervisors when it means campaigns must stop. A failed alert fails the record: the
    /// redelivery writes the same item again and publishes once more.
    pub(crate) async fn apply_waba_signal(
        &self,
        signal: &WabaSignal,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        let field = signal.signal.field();
        let event = signal.signal.event();
        counts.lock().await.waba_signals += 1;
        if !kept(&signal.signal) {
            tracing::info!(waba_id = %signal.waba_id, field, event, "WABA signal logged; it says nothing about sending");
            return Ok(());
        }
        let written = self.ports.store.record_waba_signal(signal).await?;
        if !written {
            tracing::info!(
                waba_id = %signal.waba_id,
                field,
                event,
                at = signal.at,
                "older WABA signal ignored: a later one is kept"
            );
            return Ok(());
        }
        let alarming = alarming(&signal.signal);
        if alarming {
            tracing::warn!(waba_id = %signal.waba_id, field, event, subject = %signal.signal.subject(), "WABA signal: campaigns must stop");
        } else {
            tracing::info!(waba_id = %signal.waba_id, field, event, subject = %signal.signal.subject(), "WABA signal kept");
        }
        let (true, Some(topic)) = (alarming, &self.ports.alerts) else {
            return Ok(());
        };
        let subject = format!("WhatsApp: {event} ({field})");
        let message = serde_json::json!({
            "kind": "waba_signal",
            "waba_id": signal.waba_id,
            "signal": signal.signal,
            "at": signal.at,
        });
        topic.publish(&subject, &message.to_string()).await?;
        counts.lock().await.waba_alerts += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    fn message(raw: &str) -> InboundMessage {
        InboundMessage {
            phone_number_id: "PN".into(),
            waba_id: None,
            customer: "5511987654321".into(),
            profile_name: None,
            wamid: "wamid.1".into(),
            timestamp: 1,
            message_type: "text".into(),
            text: Some("SAIR".into()),
            reply: None,
            context_id: None,
            raw: RawValue::from_string(raw.into()).unwrap(),
        }
    }

    #[test]
    fn a_customer_is_known_by_the_number_and_the_business_scoped_id() {
        let both = message(r#"{"from":"5511987654321","from_user_id":"BR.77","id":"wamid.1"}"#);
        assert_eq!(customer_ids(&both), ["5511987654321", "BR.77"]);
        let number_only = message(r#"{"from":"5511987654321","id":"wamid.1"}"#);
        assert_eq!(customer_ids(&number_only), ["5511987654321"]);
    }

    #[test]
    fn the_opt_effects_leave_the_outbox_for_the_commit() {
        let now = Utc::now();
        let reply = Effect::Send {
            message: shared::whatsapp::outbound::Outbound::text("Pronto."),
        };
        let mut effects = vec![Effect::OptOut, reply.clone()];
        let change = suppression_change(&mut effects, vec!["c".into()], now);
        assert_eq!(effects, std::slice::from_ref(&reply));
        assert_eq!(
            change,
            Some(SuppressionChange::Suppress {
                ids: vec!["c".into()],
                source: SuppressionSource::Words,
                since: now
            })
        );
        let mut effects = vec![Effect::OptIn, reply.clone()];
        assert_eq!(
            suppression_change(&mut effects, vec!["c".into()], now),
            Some(SuppressionChange::Allow {
                ids: vec!["c".into()]
            })
        );
        let mut effects = vec![reply];
        assert_eq!(
            suppression_change(&mut effects, vec!["c".into()], now),
            None
        );
        assert_eq!(effects.len(), 1);
    }
}
