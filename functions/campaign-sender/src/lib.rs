//! The campaign sender: each record of the campaign queue is one batch of recipients
//! ([`shared::campaign::sender`]). Records run one after another (the template gives the
//! event source batches of one); a record that cannot finish is reported failed and SQS
//! redelivers it after the visibility timeout, to go on where it stopped.

use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::Utc;
use thiserror::Error;

use shared::campaign::sender::{BatchError, BatchReport, Clock, Ports, send_batch};
use shared::campaign::{Batch, CampaignQueue, CampaignStore, Pacer};
use shared::desk::AlertTopic;
use shared::secrets::{PerTenantSecrets, SecretError, TenantSecrets};
use shared::store::{ScheduleStore, StoreError};
use shared::support::cache::TtlCache;
use shared::support::deadline::Deadline;
use shared::tenant::Tenant;
use shared::whatsapp::{CALL_TIMEOUT, Sender};

/// Tenants are read again after this long (as every function caches them).
const TENANT_TTL: Duration = Duration::from_secs(60);

/// The concrete adapters (AWS in `main.rs`, twins in the tests).
pub trait Adapters {
    type Campaigns: CampaignStore + Pacer;
    type Tenants: ScheduleStore;
    type Graph: Sender;
    type Queue: CampaignQueue;
    type Alerts: AlertTopic;
    type Tokens: PerTenantSecrets<TenantSecrets>;
}

pub struct Services<A: Adapters> {
    pub campaigns: A::Campaigns,
    pub tenants: A::Tenants,
    pub graph: A::Graph,
    pub queue: A::Queue,
    pub alerts: A::Alerts,
    pub tokens: A::Tokens,
}

#[derive(Debug, Error)]
pub enum RecordError {
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("tenant secret: {0}")]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Batch(#[from] BatchError),
}

pub struct CampaignSender<A: Adapters> {
    services: Services<A>,
    tenants: TtlCache<Option<Tenant>>,
}

impl<A: Adapters> CampaignSender<A> {
    pub fn new(services: Services<A>) -> Self {
        Self {
            services,
            tenants: TtlCache::new(TENANT_TTL),
        }
    }

    /// Handles the records in order; reports the ones to redeliver.
    pub async fn handle(&self, event: SqsEvent, deadline: Deadline) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for record in &event.records {
            let id = record.message_id.clone().unwrap_or_default();
            let result = match deadline.fits(CALL_TIMEOUT) {
                true => {
                    self.record(record.body.as_deref().unwrap_or(""), deadline)
                        .await
                }
                false => Err(BatchError::Unfinished("no time left to start it".into()).into()),
            };
            match result {
                Ok(report) => tracing::info!(
                    message_id = %id,
                    sent = report.sent,
                    failed = report.failed,
                    suppressed = report.suppressed,
                    unknown = report.unknown,
                    deferred = report.deferred,
                    throttled = report.throttled,
                    not_pending = report.not_pending,
                    not_running = report.not_running,
                    paused = report.paused.as_deref().unwrap_or(""),
                    finished = report.finished,
                    "campaign batch handled"
                ),
                Err(error) => {
                    tracing::warn!(message_id = %id, %error, "campaign batch to be redelivered");
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id;
                    response.batch_item_failures.push(failure);
                }
            }
        }
        response
    }

    async fn record(&self, body: &str, deadline: Deadline) -> Result<BatchReport, RecordError> {
        let batch = Batch::from_json(body).map_err(RecordError::Malformed)?;
        let pn = &batch.phone_number_id;
        let tenant = match self.tenants.get(pn) {
            Some(tenant) => tenant,
            None => {
                let tenant = self.services.tenants.tenant(pn).await?;
                self.tenants.insert(pn, tenant.clone());
                tenant
            }
        };
        let Some(tenant) = tenant.filter(|t| t.features.campaigns_enabled) else {
            tracing::warn!(campaign = %batch.campaign_id, "no tenant with campaigns enabled for the batch's number: dropped");
            return Ok(BatchReport {
                not_running: true,
                ..BatchReport::default()
            });
        };
        let secrets = self.services.tokens.tenant_secrets(pn).await?;
        let token = secrets.whatsapp_token()?;
        let ports = Ports {
            store: &self.services.campaigns,
            pacer: &self.services.campaigns,
            graph: &self.services.graph,
            queue: &self.services.queue,
            alerts: &self.services.alerts,
        };
        let clock = Clock::starting_at(Utc::now());
        Ok(send_batch(&ports, &tenant, token, &batch, clock, deadline).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::sqs::SqsMessage;
    use shared::campaign::memory::{MemoryCampaignQueue, MemoryCampaigns};
    use shared::campaign::{Campaign, Counters, RecipientState, State};
    use shared::desk::memory::MemoryAlerts;
    use shared::secrets::memory::StaticTokens;
    use shared::store::memory::MemoryStore;
    use shared::tenant::{DailyLimit, demo_always_open};
    use shared::whatsapp::memory::MemorySender;

    struct Twins;

    impl Adapters for Twins {
        type Campaigns = MemoryCampaigns;
        type Tenants = MemoryStore;
        type Graph = MemorySender;
        type Queue = MemoryCampaignQueue;
        type Alerts = MemoryAlerts;
        type Tokens = StaticTokens;
    }

    const ID: &str = "cmp_bbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn sender(campaigns_enabled: bool) -> (CampaignSender<Twins>, MemoryCampaigns, MemorySender) {
        let mut tenant = demo_always_open();
        tenant.features.campaigns_enabled = campaigns_enabled;
        tenant.campaigns.daily_limit = DailyLimit::Unlimited;
        let campaigns = MemoryCampaigns::new();
        campaigns.put_campaign(Campaign {
            phone_number_id: tenant.phone_number_id.clone(),
            id: ID.into(),
            state: State::Running,
            version: 1,
            template_name: "promo".into(),
            template_language: "pt_BR".into(),
            start_at: None,
            business_hours_only: false,
            started_at: Some(Utc::now()),
            audience_size: 3,
            counters: Counters {
                queued: 3,
                ..Counters::default()
            },
        });
        let customers: Vec<String> = (1..=3).map(|i| format!("551199999000{i}")).collect();
        campaigns.put_recipients(&tenant.phone_number_id, ID, &customers, &[]);
        let graph = MemorySender::new();
        let services = Services::<Twins> {
            campaigns: campaigns.clone(),
            tenants: MemoryStore::new().with_tenant(tenant),
            graph: graph.clone(),
            queue: MemoryCampaignQueue::new(),
            alerts: MemoryAlerts::default(),
            tokens: StaticTokens::local(),
        };
        (CampaignSender::new(services), campaigns, graph)
    }

    fn event(bodies: &[&str]) -> SqsEvent {
        let records = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                let mut message = SqsMessage::default();
                message.message_id = Some(format!("m{i}"));
                message.body = Some((*body).to_owned());
                message
            })
            .collect();
        let mut event = SqsEvent::default();
        event.records = records;
        event
    }

    fn batch_body() -> String {
        let pn = demo_always_open().phone_number_id;
        format!(
            r#"{{"v":1,"batch":{{"phone_number_id":"{pn}","campaign_id":"{ID}","from_seq":1,"to_seq":3}}}}"#
        )
    }

    #[tokio::test]
    async fn a_batch_record_is_sent_and_acknowledged() {
        let (sender, campaigns, graph) = sender(true);
        let deadline = Deadline::after(Duration::from_secs(120));
        let response = sender.handle(event(&[&batch_body()]), deadline).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(
            graph.callbacks(),
            vec![
                format!("cmp:{ID}:1"),
                format!("cmp:{ID}:2"),
                format!("cmp:{ID}:3")
            ]
        );
        let pn = demo_always_open().phone_number_id;
        assert_eq!(campaigns.state(&pn, ID), Some(State::Done));
        assert_eq!(
            campaigns.recipient(&pn, ID, 2).unwrap().0,
            RecipientState::Sent
        );
    }

    #[tokio::test]
    async fn an_unknown_version_is_redelivered_never_guessed() {
        let (sender, _, graph) = sender(true);
        let deadline = Deadline::after(Duration::from_secs(120));
        let body = batch_body().replace("\"v\":1", "\"v\":9");
        let response = sender.handle(event(&[&body, "not json"]), deadline).await;
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, vec!["m0", "m1"]);
        assert!(graph.sent().is_empty());
    }

    #[tokio::test]
    async fn a_tenant_without_campaigns_sends_nothing() {
        let (sender, _, graph) = sender(false);
        let deadline = Deadline::after(Duration::from_secs(120));
        let response = sender.handle(event(&[&batch_body()]), deadline).await;
        assert!(response.batch_item_failures.is_empty());
        assert!(graph.sent().is_empty());
    }

    #[tokio::test]
    async fn a_record_without_time_to_start_is_redelivered() {
        let (sender, _, graph) = sender(true);
        let deadline = Deadline::after(Duration::from_secs(5));
        let response = sender.handle(event(&[&batch_body()]), deadline).await;
        assert_eq!(response.batch_item_failures.len(), 1);
        assert!(graph.sent().is_empty());
    }
}
