//! What one inbound message costs the worker: DynamoDB calls and capacity units, counted
//! from the adapter's calls through a counting proxy, and the worker's time per invocation
//! (local stack and a fake Graph API on loopback, so Meta's latency is excluded). Prints
//! figures; asserts nothing about time.
//!
//! Needs the local stack (`AWS_ENDPOINT_URL`) and `cargo build --release -p worker`;
//! `infra/local/bench.sh` does both.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use blackbox::graph::FakeGraph;
use blackbox::proxy::FaultProxy;
use blackbox::runtime::{Function, binary};
use blackbox::stack::{Stack, unique};
use serde_json::{Value, json};
use shared::envelope::{Envelope, InboundMessage, Payload, Reply};
use shared::tenant::Tenant;

const NUMBER: &str = "106540352242922";
const CUSTOMERS: usize = 20;
/// A support conversation: greeting+menu, flow, flow, flow, handoff.
const TURNS: [(&str, bool); 5] = [
    ("oi", false),
    ("suporte", true),
    ("lenta", true),
    ("nao_resolveu", true),
    ("A conexão cai à noite", false),
];

fn envelope(customer: &str, turn: usize, (text, choice): (&str, bool), now: i64) -> Envelope {
    let wamid = format!("wamid.bench.{customer}.{turn}");
    Envelope::new(Payload::Message(InboundMessage {
        phone_number_id: NUMBER.into(),
        waba_id: None,
        customer: customer.into(),
        profile_name: Some("Cliente".into()),
        wamid: wamid.clone(),
        timestamp: now + turn as i64,
        message_type: if choice { "interactive" } else { "text" }.into(),
        text: (!choice).then(|| text.to_owned()),
        reply: choice.then(|| Reply {
            id: text.into(),
            title: text.into(),
        }),
        context_id: None,
        raw: serde_json::value::RawValue::from_string(json!({"id": wamid}).to_string()).unwrap(),
    }))
}

fn sqs_event(envelope: &Envelope) -> Value {
    json!({"Records": [{
        "messageId": envelope.idempotency_key(), "receiptHandle": "h", "body": envelope.to_json(),
        "attributes": {"MessageGroupId": envelope.group_key(), "MessageDeduplicationId": envelope.idempotency_key(), "ApproximateReceiveCount": "1"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench.fifo", "awsRegion": "us-east-1"
    }]})
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let stack = Stack::connect().await;
    let proxy = FaultProxy::start(&stack.endpoint).await;
    let graph = FakeGraph::start().await;
    let table = stack.table().await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/tenants/demo.yaml");
    let mut tenant = Tenant::from_yaml(path, &std::fs::read_to_string(path).unwrap()).unwrap();
    tenant.business_hours = None; // the bench runs at any hour
    stack.put_tenant(&table, &tenant).await;
    let prefix = format!("{}/tenants/", unique("bench"));
    stack
        .named_secret(
            &format!("{prefix}{NUMBER}"),
            r#"{"whatsapp_token":"bench"}"#,
        )
        .await;
    let env = stack.function_env(
        &stack.endpoint,
        &[
            ("AWS_ENDPOINT_URL_DYNAMODB", &proxy.url),
            ("TABLE_NAME", &table),
            ("TENANT_SECRET_PREFIX", &prefix),
            ("GRAPH_API_BASE_URL", &graph.url),
            ("RUST_LOG", "warn"),
        ],
    );
    let mut worker = Function::start(&binary("worker", "release"), &env).await;
    let now = chrono::Utc::now().timestamp();

    // Warm up: the first invocation reads the tenant and its token (cached for 60 s).
    let warm = envelope("5511900000000", 0, TURNS[0], now);
    worker.invoke(&sqs_event(&warm)).await.unwrap();
    let calls_before = proxy.calls().len();
    let sends_before = graph.messages().len();

    let mut times = Vec::new();
    for customer in 1..=CUSTOMERS {
        let customer = format!("55119{customer:08}");
        for (turn, input) in TURNS.into_iter().enumerate() {
            let event = sqs_event(&envelope(&customer, turn, input, now));
            let started = Instant::now();
            worker.invoke(&event).await.unwrap();
            times.push(started.elapsed());
        }
    }
    let messages = CUSTOMERS * TURNS.len();
    let calls = &proxy.calls()[calls_before..];
    let sends = graph.messages().len() - sends_before;
    let mut by_operation: BTreeMap<String, usize> = BTreeMap::new();
    let (mut rcu, mut wcu) = (0.0, 0.0);
    for call in calls {
        let operation = call
            .target
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        // Items here are under 1 KB (4 KB for reads), strongly consistent reads.
        match operation.as_str() {
            "GetItem" | "Query" => rcu += 1.0,
            "PutItem" | "UpdateItem" | "DeleteItem" => wcu += 1.0,
            "TransactWriteItems" => wcu += 2.0 * call.transact_items as f64,
            _ => {}
        }
        *by_operation.entry(operation).or_default() += 1;
    }
    println!(
        "worker cost per inbound message ({messages} messages of {CUSTOMERS} support conversations, {sends} replies):"
    );
    for (operation, count) in &by_operation {
        println!(
            "  DynamoDB {operation}: {:.2} per message",
            *count as f64 / messages as f64
        );
    }
    println!(
        "  capacity: {:.2} RCU and {:.2} WCU per message (items < 1 KB; transactions cost 2 WCU per item)",
        rcu / messages as f64,
        wcu / messages as f64
    );
    println!(
        "  SQS: webhook 1 SendMessageBatch per POST (up to 10 messages); event source 1 ReceiveMessage and 1 DeleteMessageBatch per batch of up to 10"
    );
    times.sort();
    println!(
        "  worker invocation, one message (release, local stack and fake Graph on loopback): median {:.1} ms, p95 {:.1} ms",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.95).as_secs_f64() * 1e3
    );
}
