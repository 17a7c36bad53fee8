//! The worker under test: its real binary (built with `test-hooks` for the clock and crash
//! point) under a Lambda Runtime API, with DynamoDB and Secrets Manager on the local stack,
//! a fake Graph API and a fake Claude that record the exact requests.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use shared::envelope::{Envelope, InboundMessage, Payload, Reply};
use shared::tenant::Tenant;

use crate::chatwoot::{CHATWOOT_TOKEN, FakeChatwoot};
use crate::claude::FakeClaude;
use crate::graph::FakeGraph;
use crate::runtime::{Function, binary};
use crate::stack::{Stack, unique};

/// The Anthropic key in the AI secret (`<stack>/ai`) of every harness.
pub const ANTHROPIC_KEY: &str = "sk-ant-local-test";
pub const NUMBER: &str = "106540352242922";
pub const MARIA: &str = "5511987654321";
pub const JOAO: &str = "5511912345678";
/// Monday 23 Nov 2026, 14:00 in São Paulo: the demo tenant is open.
pub const MONDAY_AFTERNOON: &str = "2026-11-23T17:00:00Z";
/// The desk token in every harness's desk secret (the desk webhook URL carries it).
pub const DESK_TOKEN: &str = "desk-token-0123456789abcdefghijklmn";

pub use shared::tenant::demo;

/// The worker binary with its own table, secrets (as `ops` writes them: the tenant's
/// `<stack>/tenants/<pn>` and `<stack>/desk/<pn>`, the stack's `<stack>/ai`), fake Graph
/// API and fake Claude; the demo tenant (or another) loaded.
pub struct Harness {
    pub stack: Stack,
    pub table: String,
    pub graph: FakeGraph,
    pub claude: FakeClaude,
    pub chatwoot: FakeChatwoot,
    pub env: Vec<(String, String)>,
    /// The worker's tenant secrets, `<stack>/tenants/`.
    pub secret_prefix: String,
    /// The desk's tenant secrets, `<stack>/desk/`.
    pub desk_secret_prefix: String,
    pub function: Function,
    pub clock: i64,
    sequence: usize,
}

impl Harness {
    /// The harness with the worker's clock at the latest Monday afternoon (the demo tenant open,
    /// not a holiday) before the real time: for tests whose readers judge expiry at the real
    /// time (the export, the erasure, `ops parked replay`), so what the worker wrote has not
    /// expired by then, whenever the tests run.
    pub async fn start_recent() -> Harness {
        use chrono::Datelike;
        let now = chrono::Utc::now();
        let holidays = demo().holidays;
        let mut day = now.date_naive();
        let clock = loop {
            let afternoon = day.and_hms_opt(17, 0, 0).unwrap().and_utc();
            if day.weekday() == chrono::Weekday::Mon && afternoon <= now && !holidays.contains(&day)
            {
                break afternoon;
            }
            day = day.pred_opt().unwrap();
        };
        let mut bot = Harness::start(&[]).await;
        bot.restart_at(&clock.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .await;
        bot.clock = clock.timestamp();
        bot
    }

    pub async fn start(extra: &[(&str, &str)]) -> Harness {
        Harness::start_with(&demo(), extra).await
    }

    /// The tenant's Chatwoot is pointed at the harness's fake one.
    pub async fn start_with(tenant: &Tenant, extra: &[(&str, &str)]) -> Harness {
        let stack = Stack::connect().await;
        let table = stack.table().await;
        let chatwoot = FakeChatwoot::start().await;
        let mut tenant = tenant.clone();
        if let Some(account) = &mut tenant.desk.chatwoot {
            account.base_url = chatwoot.url.clone();
        }
        stack.put_tenant(&table, &tenant).await;
        let stack_name = unique("stack");
        let ai_secret = stack
            .named_secret(
                &format!("{stack_name}/ai"),
                &json!({"anthropic_api_key": ANTHROPIC_KEY}).to_string(),
            )
            .await;
        let prefix = format!("{stack_name}/tenants/");
        stack
            .named_secret(
                &format!("{prefix}{NUMBER}"),
                &json!({"whatsapp_token": "token-demo", "chatwoot_token": CHATWOOT_TOKEN})
                    .to_string(),
            )
            .await;
        let desk_prefix = format!("{stack_name}/desk/");
        stack
            .named_secret(
                &format!("{desk_prefix}{NUMBER}"),
                &json!({"desk_token": DESK_TOKEN}).to_string(),
            )
            .await;
        let graph = FakeGraph::start().await;
        let claude = FakeClaude::start().await;
        let mut settings = vec![
            ("TABLE_NAME", table.as_str()),
            ("AI_SECRET_ID", ai_secret.as_str()),
            ("ANTHROPIC_BASE_URL", claude.url.as_str()),
            ("TENANT_SECRET_PREFIX", prefix.as_str()),
            ("GRAPH_API_BASE_URL", graph.url.as_str()),
            ("GRAPH_API_VERSION", "v23.0"),
            ("TEST_CLOCK", MONDAY_AFTERNOON),
        ];
        settings.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        settings.extend_from_slice(extra);
        let env = stack.function_env(&stack.endpoint, &settings);
        let function = Function::start(&binary("worker", "debug"), &env).await;
        let clock = MONDAY_AFTERNOON
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
            .timestamp();
        Harness {
            stack,
            table,
            graph,
            claude,
            chatwoot,
            env,
            secret_prefix: prefix,
            desk_secret_prefix: desk_prefix,
            function,
            clock,
            sequence: 0,
        }
    }

    /// The desk function in front of this worker: its own FIFO queue, the tenant's desk
    /// secret.
    pub async fn start_desk(&self) -> DeskFunction {
        self.start_desk_with(&[]).await
    }

    /// [`Harness::start_desk`] with more (or other) environment variables.
    pub async fn start_desk_with(&self, extra: &[(&str, &str)]) -> DeskFunction {
        let queue_url = self.stack.fifo_queue("desk").await;
        let mut settings = vec![
            ("INBOUND_QUEUE_URL", queue_url.as_str()),
            ("DESK_SECRET_PREFIX", self.desk_secret_prefix.as_str()),
        ];
        settings.extend_from_slice(extra);
        let env = self.stack.function_env(&self.stack.endpoint, &settings);
        let function = Function::start(&binary("desk", "debug"), &env).await;
        DeskFunction {
            function,
            queue_url,
        }
    }

    /// Chatwoot calls the desk with `body` (at the tenant's URL, with `headers`); what the
    /// desk queued goes to the worker. Returns the desk's HTTP status and the messages the
    /// customer got.
    pub async fn agent(
        &mut self,
        desk: &mut DeskFunction,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (u64, Vec<String>) {
        let before = self.graph.transcript().len();
        let bytes = serde_json::to_vec(body).unwrap();
        let path = format!("/desk/{NUMBER}/{DESK_TOKEN}");
        let response = desk
            .function
            .invoke(&crate::http::desk_post(&path, &bytes, headers))
            .await
            .expect("desk answered");
        let status = crate::http::status(&response);
        let envelopes: Vec<Envelope> = self
            .stack
            .drain(&desk.queue_url)
            .await
            .iter()
            .map(|r| Envelope::from_json(&r.body.to_string()).unwrap())
            .collect();
        if !envelopes.is_empty() {
            self.feed(&envelopes).await;
        }
        (status, self.graph.transcript()[before..].to_vec())
    }

    /// A scheduled function (`sla-sweep`, `off-hours`) on this harness's table, with its
    /// own FIFO queue.
    pub async fn start_schedule(&self, name: &str) -> Schedule {
        let queue_url = self.stack.fifo_queue(name).await;
        let env = self.stack.function_env(
            &self.stack.endpoint,
            &[
                ("TABLE_NAME", &self.table),
                ("INBOUND_QUEUE_URL", &queue_url),
            ],
        );
        let function = Function::start(&binary(name, "debug"), &env).await;
        Schedule {
            function,
            queue_url,
        }
    }

    /// Runs the schedule for `time` (as EventBridge Scheduler would); returns its report
    /// and the timers it queued.
    pub async fn tick(&self, schedule: &mut Schedule, time: &str) -> (Value, Vec<Envelope>) {
        let report = schedule
            .function
            .invoke(&serde_json::json!({"time": time}))
            .await
            .expect("the schedule ran");
        let timers = self
            .stack
            .drain(&schedule.queue_url)
            .await
            .iter()
            .map(|r| Envelope::from_json(&r.body.to_string()).unwrap())
            .collect();
        (report, timers)
    }

    /// Hands envelopes to the worker; returns every message sent meanwhile (to anyone).
    pub async fn feed(&mut self, envelopes: &[Envelope]) -> Vec<String> {
        let before = self.graph.transcript().len();
        let response = self
            .invoke(&envelopes.iter().collect::<Vec<_>>())
            .await
            .expect("worker answered");
        assert_eq!(
            failures(&response),
            Vec::<String>::new(),
            "{}",
            self.function.output().join("\n")
        );
        self.graph.transcript()[before..].to_vec()
    }

    /// A new worker process whose clock starts at `clock` (RFC 3339).
    pub async fn restart_at(&mut self, clock: &str) {
        self.env.retain(|(k, _)| k != "TEST_CLOCK");
        self.env.push(("TEST_CLOCK".into(), clock.into()));
        self.function = Function::start(&binary("worker", "debug"), &self.env).await;
    }

    /// A new worker process (a new container) with the same configuration.
    pub async fn restart(&mut self, drop_env: &str) {
        self.env.retain(|(k, _)| k != drop_env);
        self.function = Function::start(&binary("worker", "debug"), &self.env).await;
    }

    pub fn message(&mut self, customer: &str, text: Option<&str>, reply: Option<&str>) -> Envelope {
        self.sequence += 1;
        self.clock += 5;
        let wamid = crate::meta::wamid(customer, &format!("{}.{}", unique("m"), self.sequence));
        Envelope::new(Payload::Message(InboundMessage {
            phone_number_id: NUMBER.into(),
            waba_id: Some("102290129340398".into()),
            customer: customer.into(),
            profile_name: Some("Maria".into()),
            wamid: wamid.clone(),
            timestamp: self.clock,
            message_type: if reply.is_some() {
                "interactive"
            } else {
                "text"
            }
            .into(),
            text: text.map(str::to_owned),
            reply: reply.map(|id| Reply {
                id: id.into(),
                title: id.into(),
            }),
            context_id: None,
            raw: serde_json::value::RawValue::from_string(json!({"id": wamid}).to_string())
                .unwrap(),
        }))
    }

    pub async fn invoke(&mut self, envelopes: &[&Envelope]) -> Result<Value, Value> {
        self.function.invoke(&sqs_event(envelopes)).await
    }

    /// Sends one customer message and returns the messages the bot sent in answer.
    pub async fn say(
        &mut self,
        customer: &str,
        text: Option<&str>,
        reply: Option<&str>,
    ) -> Vec<String> {
        let envelope = self.message(customer, text, reply);
        self.feed(&[envelope]).await
    }

    /// The delivery status recorded for an outbound message.
    pub async fn delivery(&self, wamid: &str) -> String {
        let items = self
            .stack
            .items(&self.table, &shared::store::keys::outbound(wamid))
            .await;
        items[0]["status"].as_s().unwrap().clone()
    }

    async fn session_item(
        &self,
        customer: &str,
    ) -> std::collections::HashMap<String, AttributeValue> {
        self.stack
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key(
                "pk",
                AttributeValue::S(shared::store::keys::conversation(NUMBER, customer)),
            )
            .key("sk", AttributeValue::S("SESSION".into()))
            .send()
            .await
            .unwrap()
            .item
            .expect("a session")
    }

    /// The stored session, as JSON.
    pub async fn session(&self, customer: &str) -> Value {
        let item = self.session_item(customer).await;
        serde_json::from_str(item["session"].as_s().unwrap()).unwrap()
    }

    pub async fn state(&self, customer: &str) -> String {
        self.session_item(customer).await["state"]
            .as_s()
            .unwrap()
            .clone()
    }
}

/// A scheduled function of a [`Harness`].
pub struct Schedule {
    pub function: Function,
    pub queue_url: String,
}

/// The desk function of a [`Harness`].
pub struct DeskFunction {
    pub function: Function,
    pub queue_url: String,
}

pub fn sqs_event(envelopes: &[&Envelope]) -> Value {
    let records: Vec<Value> = envelopes
        .iter()
        .enumerate()
        .map(|(i, envelope)| {
            json!({
                "messageId": format!("record-{i}-{}", envelope.idempotency_key()),
                "receiptHandle": "handle",
                "body": envelope.to_json(),
                "attributes": {
                    "MessageGroupId": envelope.group_key(),
                    "MessageDeduplicationId": envelope.idempotency_key(),
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1795453200000",
                    "SenderId": "AROA",
                    "ApproximateFirstReceiveTimestamp": "1795453200000"
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:local-inbound.fifo",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

pub fn failures(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}
