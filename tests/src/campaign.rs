//! A campaign on the local stack, for the black-box tests and the bench: the real
//! campaign-dispatch and campaign-sender binaries (several sender processes at once), a
//! standard campaign queue they share, a fake Graph that records when each send arrived,
//! and the recipients written as the import writes them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};
use shared::campaign::due_key;
use shared::campaign::dynamodb::{campaign_pk, campaign_sk, due_pk, recipient_sk, recipients_pk};
use shared::envelope::{Signal, WabaSignal};
use shared::store::WabaWrite;
use shared::store::keys::{self, customer_hash};
use shared::tenant::{DailyLimit, Tenant};
use tokio::sync::Mutex;

use crate::graph::FakeGraph;
use crate::runtime::{Function, binary};
use crate::stack::{Stack, unique};

/// How long the queue stays empty, nothing in flight, before a run ends: longer than the
/// tests' visibility timeouts and pair-rate delays.
pub const QUIET: Duration = Duration::from_secs(6);

pub const CAMPAIGN: &str = "cmp_testtesttesttesttesttest";

/// The customer of recipient `seq`.
pub fn customer(seq: u32) -> String {
    format!("55119{seq:08}")
}

pub struct CampaignStack {
    pub stack: Stack,
    pub table: String,
    pub queue: String,
    pub alerts: String,
    pub graph: FakeGraph,
    pub tenant: Tenant,
    env: Vec<(String, String)>,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl CampaignStack {
    /// A table, a campaign queue (visibility `visibility`: how soon a failed batch comes
    /// back), the alert topic, the tenant at `throughput` per second with no messaging
    /// limit, and its token.
    pub async fn start(throughput: u32, visibility: Duration) -> CampaignStack {
        let stack = Stack::connect().await;
        let table = stack.table().await;
        let queue = stack
            .sqs
            .create_queue()
            .queue_name(unique("campaigns"))
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility.as_secs().to_string(),
            )
            .send()
            .await
            .expect("create queue")
            .queue_url
            .unwrap();
        let (topic, alerts) = stack.topic_with_queue("campaign-alerts").await;
        let graph = FakeGraph::start().await;
        let mut tenant = shared::tenant::demo_always_open();
        tenant.features.campaigns_enabled = true;
        tenant.campaigns.throughput_per_second = throughput;
        tenant.campaigns.daily_limit = DailyLimit::Unlimited;
        stack.put_tenant(&table, &tenant).await;
        let prefix = format!("{}/tenants/", unique("stack"));
        stack
            .named_secret(
                &format!("{prefix}{}", tenant.phone_number_id),
                r#"{"whatsapp_token": "campaign-token"}"#,
            )
            .await;
        let env = stack.function_env(
            &stack.endpoint,
            &[
                ("TABLE_NAME", &table),
                ("CAMPAIGN_QUEUE_URL", &queue),
                ("TENANT_SECRET_PREFIX", &prefix),
                ("SLA_ALERT_TOPIC_ARN", &topic),
                ("GRAPH_API_BASE_URL", &graph.url),
                ("GRAPH_API_VERSION", "v23.0"),
            ],
        );
        CampaignStack {
            stack,
            table,
            queue,
            alerts,
            graph,
            tenant,
            env,
        }
    }

    /// The functions' DynamoDB and SQS calls go through `url` (a counting proxy).
    pub fn route_through(&mut self, url: &str) {
        for name in ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS"] {
            self.env.push((name.to_owned(), url.to_owned()));
        }
        self.env.push(("RUST_LOG".to_owned(), "warn".to_owned()));
    }

    pub fn pn(&self) -> &str {
        &self.tenant.phone_number_id
    }

    /// An approved campaign of `audience` recipients, due now, as the approval leaves it.
    pub async fn approved_campaign(&self, audience: u32) {
        let now = chrono::Utc::now().timestamp();
        let campaign = HashMap::from([
            ("pk".to_owned(), s(campaign_pk(self.pn()))),
            ("sk".to_owned(), s(campaign_sk(CAMPAIGN))),
            ("state".to_owned(), s("approved")),
            ("version".to_owned(), n(2)),
            ("name".to_owned(), s("Promo")),
            ("template_name".to_owned(), s("promo_outubro")),
            ("template_language".to_owned(), s("pt_BR")),
            ("template_category".to_owned(), s("MARKETING")),
            ("start_at".to_owned(), n(now - 1)),
            ("audience_size".to_owned(), n(audience)),
        ]);
        let due = HashMap::from([
            ("pk".to_owned(), s(due_pk())),
            ("sk".to_owned(), s(due_key(now - 1, self.pn(), CAMPAIGN))),
        ]);
        self.put_all(vec![campaign, due]).await;
        let recipients = (1..=audience)
            .map(|seq| {
                HashMap::from([
                    ("pk".to_owned(), s(recipients_pk(self.pn(), CAMPAIGN))),
                    ("sk".to_owned(), s(recipient_sk(seq))),
                    ("customer".to_owned(), s(customer(seq))),
                    ("params".to_owned(), s(r#"["Ana"]"#)),
                    ("state".to_owned(), s("pending")),
                    ("expires_at".to_owned(), n(now + 30 * 86_400)),
                ])
            })
            .collect();
        self.put_all(recipients).await;
    }

    pub async fn opt_out(&self, customer: &str) {
        let item = HashMap::from([
            ("pk".to_owned(), s(keys::suppression(self.pn()))),
            ("sk".to_owned(), s(customer_hash(self.pn(), customer))),
            ("since".to_owned(), n(0)),
            ("source".to_owned(), s("words")),
        ]);
        self.put_all(vec![item]).await;
    }

    /// The template's status as the worker keeps it from Meta's webhooks.
    pub async fn template_status(&self, name: &str, status: &str) {
        let item = HashMap::from([
            ("pk".to_owned(), s(keys::waba(&self.tenant.waba_id))),
            ("sk".to_owned(), s(keys::waba_template(name, "pt_BR"))),
            ("status".to_owned(), s(status)),
            ("category".to_owned(), s("MARKETING")),
            ("at".to_owned(), n(chrono::Utc::now().timestamp())),
        ]);
        self.put_all(vec![item]).await;
    }

    /// The number's quality signal, `event` now, stored as the worker stores Meta's
    /// `phone_number_quality_update` (by the number's display digits).
    pub async fn quality_signal(&self, event: &str) {
        let signal = WabaSignal {
            waba_id: self.tenant.waba_id.clone(),
            at: chrono::Utc::now().timestamp() + 1,
            signal: Signal::NumberQuality {
                display_phone_number: "551130000000".into(),
                event: event.into(),
                messaging_limit: None,
            },
        };
        let write = WabaWrite::of(&signal);
        let mut item = HashMap::from([
            ("pk".to_owned(), s(keys::waba(&signal.waba_id))),
            ("sk".to_owned(), s(write.sk)),
            (write.at_attribute.to_owned(), n(write.at)),
        ]);
        for (name, value) in write.attributes {
            if let Some(value) = value {
                item.insert(name.to_owned(), s(value));
            }
        }
        self.put_all(vec![item]).await;
    }

    async fn put_all(&self, items: Vec<HashMap<String, AttributeValue>>) {
        for chunk in items.chunks(25) {
            let mut writes: Vec<WriteRequest> = chunk
                .iter()
                .map(|item| {
                    let put = PutRequest::builder().set_item(Some(item.clone())).build();
                    WriteRequest::builder().put_request(put.unwrap()).build()
                })
                .collect();
            while !writes.is_empty() {
                let output = self
                    .stack
                    .dynamodb
                    .batch_write_item()
                    .request_items(&self.table, writes)
                    .send()
                    .await
                    .expect("batch write");
                writes = output
                    .unprocessed_items
                    .and_then(|mut tables| tables.remove(&self.table))
                    .unwrap_or_default();
            }
        }
    }

    /// The campaign item's attributes.
    pub async fn campaign(&self) -> HashMap<String, AttributeValue> {
        self.stack
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("pk", s(campaign_pk(self.pn())))
            .key("sk", s(campaign_sk(CAMPAIGN)))
            .consistent_read(true)
            .send()
            .await
            .expect("get campaign")
            .item
            .unwrap_or_default()
    }

    pub async fn counter(&self, name: &str) -> u64 {
        match self.campaign().await.get(name) {
            Some(AttributeValue::N(value)) => value.parse().unwrap(),
            _ => 0,
        }
    }

    pub async fn state(&self) -> String {
        match self.campaign().await.get("state") {
            Some(AttributeValue::S(state)) => state.clone(),
            _ => String::new(),
        }
    }

    /// A recipient's state.
    pub async fn recipient_state(&self, seq: u32) -> String {
        let item = self
            .stack
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("pk", s(recipients_pk(self.pn(), CAMPAIGN)))
            .key("sk", s(recipient_sk(seq)))
            .send()
            .await
            .expect("get recipient")
            .item
            .unwrap_or_default();
        match item.get("state") {
            Some(AttributeValue::S(state)) => state.clone(),
            _ => String::new(),
        }
    }

    /// Runs the real dispatcher once, for now.
    pub async fn dispatch(&self) -> Value {
        let binary = binary("campaign-dispatch", "debug");
        let mut dispatcher = Function::start(&binary, &self.env).await;
        let time = chrono::Utc::now().to_rfc3339();
        dispatcher
            .invoke(&json!({ "time": time }))
            .await
            .expect("dispatch runs")
    }

    /// `count` sender processes.
    pub async fn senders(&self, count: usize, profile: &str) -> Vec<Function> {
        let mut senders = Vec::new();
        for _ in 0..count {
            let sender = Function::start(&binary("campaign-sender", profile), &self.env).await;
            sender.set_timeout(Duration::from_secs(120));
            senders.push(sender);
        }
        senders
    }

    /// Polls the campaign queue as Lambda's event source does, one message per invocation,
    /// spread over the senders, until the queue stays empty for [`QUIET`] with nothing in
    /// flight, or `limit` passes; deletes what a sender handled (a reported failure comes
    /// back after the visibility timeout). Returns the invocations made.
    pub async fn run(&self, senders: Vec<Function>, limit: Duration) -> usize {
        let started = Instant::now();
        let senders: Vec<Arc<Mutex<Function>>> = senders
            .into_iter()
            .map(|f| Arc::new(Mutex::new(f)))
            .collect();
        let mut invocations = 0;
        let mut tasks: Vec<tokio::task::JoinHandle<()>> = Vec::new();
        let mut quiet_since = Instant::now();
        while started.elapsed() < limit {
            let received = self
                .stack
                .sqs
                .receive_message()
                .queue_url(&self.queue)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            let messages = received.messages.unwrap_or_default();
            tasks.retain(|task| !task.is_finished());
            if messages.is_empty() {
                if !tasks.is_empty() {
                    quiet_since = Instant::now();
                } else if quiet_since.elapsed() >= QUIET {
                    break;
                }
                continue;
            }
            quiet_since = Instant::now();
            for message in messages {
                let sender = senders[invocations % senders.len()].clone();
                invocations += 1;
                let (sqs, queue) = (self.stack.sqs.clone(), self.queue.clone());
                tasks.push(tokio::spawn(async move {
                    let event = sqs_event(&message);
                    let outcome = sender.lock().await.invoke(&event).await;
                    let failed = match &outcome {
                        Ok(response) => response["batchItemFailures"]
                            .as_array()
                            .is_some_and(|f| !f.is_empty()),
                        Err(_) => true,
                    };
                    if !failed {
                        sqs.delete_message()
                            .queue_url(&queue)
                            .receipt_handle(message.receipt_handle.unwrap_or_default())
                            .send()
                            .await
                            .expect("delete");
                    }
                }));
            }
        }
        for task in tasks {
            task.await.unwrap();
        }
        invocations
    }

    /// Every message request the fake Graph received, answered or refused: (arrival,
    /// recipient).
    pub fn sends(&self) -> Vec<(Instant, String)> {
        self.graph
            .requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/messages"))
            .map(|r| (r.at, r.body["to"].as_str().unwrap_or_default().to_owned()))
            .collect()
    }
}

/// The most requests in any one-second window.
pub fn worst_second(times: &[Instant]) -> usize {
    let mut times = times.to_vec();
    times.sort();
    (0..times.len())
        .map(|i| {
            let end = times[i] + Duration::from_secs(1);
            times[i..].iter().take_while(|at| **at < end).count()
        })
        .max()
        .unwrap_or(0)
}

/// The SQS event Lambda's event source would give for one message.
fn sqs_event(message: &aws_sdk_sqs::types::Message) -> Value {
    json!({"Records": [{
        "messageId": message.message_id.clone().unwrap_or_default(),
        "receiptHandle": message.receipt_handle.clone().unwrap_or_default(),
        "body": message.body.clone().unwrap_or_default(),
        "attributes": {},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:campaigns",
        "awsRegion": "us-east-1"
    }]})
}
