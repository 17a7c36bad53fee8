//! One record of the batch: a duplicate does nothing, a started event resumes its outbox,
//! a new one is applied, then its outbox runs.

use aws_lambda_events::sqs::SqsMessage;
use chrono::{DateTime, Duration, Utc};
use shared::envelope::{Envelope, Payload};
use shared::store::Store;
use shared::support::deadline::Deadline;
use tokio::sync::Mutex;

use crate::counters::Counts;
use crate::{Adapters, PARKED_DAYS, Worker, WorkerError};

impl<A: Adapters> Worker<A> {
    pub(crate) async fn handle_record(
        &self,
        record: &SqsMessage,
        deadline: Deadline,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        let envelope = Envelope::from_json(record.body.as_deref().unwrap_or_default())?;
        let key = envelope.idempotency_key();
        let now = self.now();
        if let Payload::Status(status) = &envelope.payload {
            self.apply_status(&envelope, status, &key, now, counts)
                .await?;
            counts.lock().await.handled += 1;
            return Ok(());
        }
        let Some((number, customer)) = envelope.conversation() else {
            let Payload::WabaSignal(signal) = &envelope.payload else {
                unreachable!("only account signals belong to no conversation")
            };
            self.apply_waba_signal(signal, counts).await?;
            counts.lock().await.handled += 1;
            return Ok(());
        };
        // An erasure is carried out for a disabled tenant too: it sends nothing, and the
        // customer's right does not wait on the provider's contract.
        let tenant = match envelope.payload {
            Payload::Erase(_) => self.read_tenant(number).await?,
            _ => self.serving_tenant(number).await?,
        };
        let Some(tenant) = tenant else {
            // Unknown or disabled: kept for `ops parked replay`, nothing sent. Desk and timer
            // events too, so an agent's reply written meanwhile reaches the customer later.
            tracing::warn!(phone_number_id = %number, "event for an unknown or disabled tenant parked");
            self.park(&envelope, now, counts).await?;
            return Ok(());
        };
        if let Payload::Erase(request) = &envelope.payload {
            self.erase(request, &tenant, now, counts).await?;
            counts.lock().await.handled += 1;
            return Ok(());
        }
        // Changes no conversation: nothing to record, the list's writes repeat harmlessly.
        if let Payload::Preference(preference) = &envelope.payload {
            self.apply_preference(preference, &key, counts).await?;
            counts.lock().await.handled += 1;
            return Ok(());
        }
        if let Payload::Message(message) = &envelope.payload
            && message
                .waba_id
                .as_deref()
                .is_some_and(|waba_id| waba_id != tenant.waba_id)
        {
            // The number is the tenant's but the account is not: a misconfigured or
            // moved number must not be answered in the tenant's name.
            tracing::warn!(
                phone_number_id = %number,
                "message from another WhatsApp Business Account than the tenant's parked"
            );
            self.park(&envelope, now, counts).await?;
            return Ok(());
        }
        let loaded = self.ports.store.load(number, customer, &key).await?;
        let record = match loaded.record {
            Some(record) if record.is_complete() => {
                counts.lock().await.duplicates += 1;
                return Ok(());
            }
            // Committed before, effects pending: a redelivery after a failure or a crash.
            Some(record) => record,
            None => {
                let start = self
                    .conversation_start(
                        &envelope.payload,
                        &key,
                        loaded.session.as_ref(),
                        &tenant,
                        now,
                    )
                    .await?;
                // A retry of an event of an erased conversation: it must not bring it back.
                if start.erased {
                    counts.lock().await.erased_events += 1;
                    return Ok(());
                }
                self.apply(
                    &envelope,
                    &key,
                    loaded.session,
                    start.reply,
                    &tenant,
                    now,
                    deadline,
                    counts,
                )
                .await?
            }
        };
        self.run_outbox(&envelope, number, customer, &key, &record, counts)
            .await?;
        counts.lock().await.handled += 1;
        Ok(())
    }

    /// Keeps a message for `ops parked replay`. Nothing else is written: no event record,
    /// so the replayed message is handled as new (its record then dedups it as usual).
    async fn park(
        &self,
        envelope: &Envelope,
        now: DateTime<Utc>,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        self.ports
            .store
            .park(envelope, now, now + Duration::days(PARKED_DAYS))
            .await?;
        counts.lock().await.parked += 1;
        Ok(())
    }
}
