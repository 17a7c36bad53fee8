//! The customer's erasure (data rights), carried out in the conversation's group so no
//! other event of the conversation runs meanwhile: the desk contact first (the link that
//! names it goes with the rest), then every item of the customer, leaving hashed tombstones
//! of the event keys, then the result on the erasure's tracking. A redelivery of a done
//! erasure does nothing; one that stopped half way finds what is left and finishes.
//!
//! A tombstone is read only where a retry of an erased event can arrive unnoticed: an event
//! with no record in a conversation without a session, or a message older than the newest
//! one its session handled (the session a message written after the erasure opened); never
//! on the typical message, which is new and in order.

use chrono::{DateTime, Utc};
use shared::desk::{Customer, Desk, DeskError};
use shared::envelope::{EraseRequest, Payload};
use shared::store::{DeskContactErased, Erasure, Store, StoredSession};
use shared::tenant::Tenant;
use tokio::sync::Mutex;

use crate::counters::Counts;
use crate::{Adapters, Worker, WorkerError};

impl<A: Adapters> Worker<A> {
    pub(crate) async fn erase(
        &self,
        request: &EraseRequest,
        tenant: &Tenant,
        now: DateTime<Utc>,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        let store = &self.ports.store;
        let number = tenant.phone_number_id.as_str();
        if store
            .erasure(number, &request.id)
            .await?
            .is_some_and(|state| state.done_at.is_some())
        {
            counts.lock().await.duplicates += 1;
            return Ok(());
        }
        let erasure = Erasure {
            id: &request.id,
            tenant,
            customer: &request.customer,
        };
        let desk_contact = self.forget_desk_contact(tenant, &request.customer).await?;
        let removed = store.erase(erasure, now).await?;
        store.erasure_done(erasure, desk_contact, now).await?;
        counts.lock().await.erasures += 1;
        tracing::info!(
            erasure = %request.id,
            items = removed.values().sum::<u64>(),
            desk_contact = desk_contact.as_str(),
            "customer erased"
        );
        Ok(())
    }

    /// Deletes the customer's desk contact where the tenant has a desk. A desk that is
    /// down fails the record (SQS retries the erasure); one that refuses is recorded on the
    /// erasure for a person to finish, and the rest is erased.
    async fn forget_desk_contact(
        &self,
        tenant: &Tenant,
        customer: &str,
    ) -> Result<DeskContactErased, WorkerError> {
        let number = tenant.phone_number_id.as_str();
        let Some(account) = &tenant.desk.chatwoot else {
            return Ok(DeskContactErased::NoDesk);
        };
        let link = self.ports.store.desk_link(number, customer).await?;
        let secrets = self.secrets(number).await?;
        let token = match secrets.chatwoot_token() {
            Ok(token) => token,
            Err(error) => {
                tracing::error!(%error, "no desk token to delete the customer's contact; needs attention");
                return Ok(DeskContactErased::Refused);
            }
        };
        let who = Customer {
            phone_number_id: number,
            customer,
            name: None,
        };
        let forgotten = self
            .ports
            .desk
            .forget_contact(
                account,
                token,
                &who,
                link.map(|l| l.contact_id),
                self.deadline(),
            )
            .await;
        match forgotten {
            Ok(true) => Ok(DeskContactErased::Deleted),
            Ok(false) => Ok(DeskContactErased::NotFound),
            Err(error @ DeskError::Unavailable(_)) => Err(WorkerError::Desk(error)),
            Err(error @ DeskError::Refused(_)) => {
                tracing::error!(%error, "the desk refused to delete the customer's contact; needs attention");
                Ok(DeskContactErased::Refused)
            }
        }
    }
}

/// Whether an event with no record could belong to an erased conversation (see the
/// module): its tombstone is then read.
pub(crate) fn may_be_erased(payload: &Payload, session: Option<&StoredSession>) -> bool {
    match (payload, session) {
        (_, None) => true,
        (Payload::Message(message), Some(stored)) => {
            message.timestamp < stored.session.last_message_at
        }
        _ => false,
    }
}
