//! What one inbound message costs the worker: DynamoDB calls and capacity units, counted
//! from the adapter's calls through a counting proxy, and the worker's time per invocation
//! (local stack, fake Graph API and fake Claude on loopback, so Meta's and Claude's latency
//! are excluded). Two runs: support conversations through the menu and a flow, and AI
//! attendant turns (Claude requests, request size, and the worker time they add). Prints
//! figures; asserts nothing about time.
//!
//! Needs the local stack (`AWS_ENDPOINT_URL`) and `cargo build --release -p worker`;
//! `infra/local/bench.sh` does both.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use blackbox::claude::{FakeClaude, Reply as ClaudeReply};
use blackbox::graph::FakeGraph;
use blackbox::proxy::FaultProxy;
use blackbox::runtime::{Function, binary};
use blackbox::stack::{Stack, unique};
use serde_json::{Value, json};
use shared::envelope::StatusUpdate;
use shared::envelope::{Envelope, InboundMessage, Payload, Reply};
use shared::hooks::EventType;
use shared::store::keys;

const NUMBER: &str = "106540352242922";
/// A second tenant, with three event subscriptions.
const SUBSCRIBED_NUMBER: &str = "106540352242923";
const CUSTOMERS: usize = 20;
/// A support conversation: greeting+menu, flow, flow, flow, handoff, then a message while
/// waiting for the agent.
const TURNS: [(&str, bool); 6] = [
    ("oi", false),
    ("suporte", true),
    ("lenta", true),
    ("nao_resolveu", true),
    ("A conexão cai à noite", false),
    ("Já reiniciei o roteador duas vezes", false),
];

const TURN_LABELS: [&str; 6] = [
    "a new conversation's first text (greeting and menu: two replies)",
    "a menu choice (the flow's first question: one reply)",
    "a flow answer (one reply)",
    "a flow answer (one reply)",
    "a free-text problem handed to a person (reply, queue, desk note, place told)",
    "a message while waiting, forwarded to the agent's desk",
];

/// An AI conversation: greeting+menu, the attendant's option, then three questions (the
/// second answered after a FAQ lookup). Only the questions are measured.
const AI_TURNS: [(&str, bool); 5] = [
    ("oi", false),
    ("duvidas", true),
    ("Qual o horário de atendimento?", false),
    ("Quanto custa o plano de 600 mega?", false),
    ("E a instalação demora quanto?", false),
];
const AI_MEASURED_FROM: usize = 2;

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

/// `envelope` for the tenant with subscriptions.
fn subscribed_envelope(customer: &str, turn: usize, input: (&str, bool), now: i64) -> Envelope {
    let mut envelope = envelope(customer, turn, input, now);
    if let Payload::Message(message) = &mut envelope.payload {
        message.phone_number_id = SUBSCRIBED_NUMBER.into();
    }
    envelope
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

/// The size DynamoDB bills for an item: attribute names plus values (numbers about half
/// their digits, lists and maps 3 bytes plus their elements, 1 byte each).
fn item_bytes(item: &Value) -> usize {
    item.as_object().map_or(0, |attributes| {
        attributes
            .iter()
            .map(|(name, value)| name.len() + value_bytes(value))
            .sum()
    })
}

fn value_bytes(value: &Value) -> usize {
    let Some((kind, inner)) = value.as_object().and_then(|v| v.iter().next()) else {
        return 0;
    };
    match kind.as_str() {
        "S" | "B" => inner.as_str().map_or(0, str::len),
        "N" => inner.as_str().map_or(1, |n| n.len().div_ceil(2) + 1),
        "L" => {
            3 + inner
                .as_array()
                .map_or(0, |l| l.iter().map(|v| 1 + value_bytes(v)).sum())
        }
        "M" => {
            3 + inner.as_object().map_or(0, |m| {
                m.iter().map(|(k, v)| 1 + k.len() + value_bytes(v)).sum()
            })
        }
        "SS" | "NS" => inner.as_array().map_or(0, |l| {
            l.iter().map(|v| v.as_str().map_or(0, str::len)).sum()
        }),
        _ => 1,
    }
}

/// What the conversation list's index (`gsi1`) holds of a session: its keys and projected
/// attributes.
type IndexImage = [Option<String>; 4];

fn index_image(item: &Value) -> IndexImage {
    [keys::GSI1PK, keys::GSI1SK, keys::STAGE, keys::DEPARTMENT].map(|name| {
        let value = &item[name];
        value["S"]
            .as_str()
            .or(value["N"].as_str())
            .map(str::to_owned)
    })
}

/// Write units each session write costs the index, by DynamoDB's rules for global secondary
/// indexes: an entry put 1, a changed index key 2 (delete and put), changed projected
/// attributes only 1, nothing changed 0 (every entry is far below 1 KB). Followed over the
/// whole run in order, since a write's cost depends on the one before; keyed by request.
fn index_writes(calls: &[blackbox::proxy::Call]) -> HashMap<String, f64> {
    let mut images: HashMap<String, IndexImage> = HashMap::new();
    let mut writes = HashMap::new();
    for call in calls {
        let puts: Vec<&Value> = match call.target.rsplit('.').next() {
            Some("PutItem") => vec![&call.request["Item"]],
            Some("TransactWriteItems") => call.request["TransactItems"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|item| &item["Put"]["Item"])
                .filter(|item| item.is_object())
                .collect(),
            _ => continue,
        };
        let mut units = 0.0;
        for item in puts {
            let image = index_image(item);
            let key = format!("{}|{}", item["pk"]["S"], item["sk"]["S"]);
            let before = images.insert(key, image.clone());
            let indexed = |image: &IndexImage| image[0].is_some() && image[1].is_some();
            units += match before {
                _ if !indexed(&image) => 0.0,
                None => 1.0,
                Some(before) if !indexed(&before) => 1.0,
                Some(before) if before[..2] != image[..2] => 2.0,
                Some(before) if before != image => 1.0,
                Some(_) => 0.0,
            };
        }
        writes.insert(call.request.to_string(), units);
    }
    writes
}

fn units(bytes: usize, per_unit: usize) -> f64 {
    bytes.div_ceil(per_unit).max(1) as f64
}

/// An eventually consistent read bills half a strongly consistent one.
fn read_factor(request: &Value) -> f64 {
    if request["ConsistentRead"].as_bool() == Some(true) {
        1.0
    } else {
        0.5
    }
}

/// Billed capacity of the DynamoDB calls, from the items' sizes: a write costs one unit per
/// started KB of the item (twice in a transaction; an update is sized by the item as the
/// table holds it at the end, an upper bound), a strongly consistent read one unit per
/// started 4 KB of what it read, an eventually consistent one half that.
async fn dynamodb_figures(
    stack: &Stack,
    table: &str,
    calls: &[blackbox::proxy::Call],
    index: &HashMap<String, f64>,
    messages: usize,
) {
    let mut by_operation: BTreeMap<String, usize> = BTreeMap::new();
    let (mut rcu, mut wcu) = (0.0, 0.0);
    let index_wcu: f64 = calls
        .iter()
        .filter_map(|call| index.get(&call.request.to_string()))
        .fold(0.0, |sum, units| sum + units);
    for call in calls {
        let operation = call
            .target
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        match operation.as_str() {
            "GetItem" => {
                rcu += read_factor(&call.request) * units(item_bytes(&call.response["Item"]), 4096)
            }
            "BatchGetItem" => {
                // Every key asked for is billed, found or not (at least one unit each).
                let asked = call.request["RequestItems"][table]["Keys"]
                    .as_array()
                    .map_or(0, Vec::len);
                let found = call.response["Responses"][table]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                rcu += read_factor(&call.request["RequestItems"][table])
                    * (found
                        .iter()
                        .map(|i| units(item_bytes(i), 4096))
                        .sum::<f64>()
                        + asked.saturating_sub(found.len()) as f64);
            }
            "Query" => {
                let items = call.response["Items"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                rcu += units(items.iter().map(item_bytes).sum(), 4096);
            }
            "PutItem" => wcu += units(item_bytes(&call.request["Item"]), 1024),
            "UpdateItem" => {
                wcu += units(
                    current_bytes(stack, table, &call.request["Key"]).await,
                    1024,
                )
            }
            "DeleteItem" => wcu += 1.0,
            "TransactWriteItems" => {
                for item in call.request["TransactItems"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let bytes = match (&item["Put"], &item["Update"]) {
                        (put, _) if put.is_object() => item_bytes(&put["Item"]),
                        (_, update) if update.is_object() => {
                            current_bytes(stack, table, &update["Key"]).await
                        }
                        _ => 1,
                    };
                    wcu += 2.0 * units(bytes, 1024);
                }
            }
            _ => {}
        }
        *by_operation.entry(operation).or_default() += 1;
    }
    for (operation, count) in &by_operation {
        println!(
            "  DynamoDB {operation}: {:.2} per event",
            *count as f64 / messages as f64
        );
    }
    println!(
        "  billed capacity: {:.2} RCU and {:.2} WCU per event (from the items' sizes; transactions bill twice), of which {:.2} WCU to the conversation list's index",
        rcu / messages as f64,
        (wcu + index_wcu) / messages as f64,
        index_wcu / messages as f64
    );
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Writes an item straight to the table, outside the counted calls.
async fn put_item(stack: &Stack, table: &str, item: HashMap<String, AttributeValue>) {
    stack
        .dynamodb
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .expect("put item");
}

/// The size of the item at `key` as the table holds it now (0 when gone).
async fn current_bytes(stack: &Stack, table: &str, key: &Value) -> usize {
    let output = stack
        .dynamodb
        .get_item()
        .table_name(table)
        .key(
            "pk",
            AttributeValue::S(key["pk"]["S"].as_str().unwrap_or_default().into()),
        )
        .key(
            "sk",
            AttributeValue::S(key["sk"]["S"].as_str().unwrap_or_default().into()),
        )
        .send()
        .await
        .unwrap();
    output.item.map_or(0, |item| {
        item.iter()
            .map(|(name, value)| name.len() + attribute_bytes(value))
            .sum()
    })
}

fn attribute_bytes(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len().div_ceil(2) + 1,
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + attribute_bytes(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + attribute_bytes(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

fn print_times(label: &str, times: &mut [Duration]) {
    times.sort();
    println!(
        "  {label}: median {:.1} ms, p95 {:.1} ms",
        percentile(times, 0.5).as_secs_f64() * 1e3,
        percentile(times, 0.95).as_secs_f64() * 1e3
    );
}

#[tokio::main]
async fn main() {
    let stack = Stack::connect().await;
    let proxy = FaultProxy::start(&stack.endpoint).await;
    let graph = FakeGraph::start().await;
    let claude = FakeClaude::start().await;
    let table = stack.table().await;
    // The bench runs at any hour.
    let tenant = shared::tenant::demo_always_open();
    stack.put_tenant(&table, &tenant).await;
    let prefix = format!("{}/tenants/", unique("bench"));
    stack
        .named_secret(
            &format!("{prefix}{NUMBER}"),
            r#"{"whatsapp_token":"bench"}"#,
        )
        .await;
    let ai_secret = stack.secret(r#"{"anthropic_api_key":"bench"}"#).await;
    let env = stack.function_env(
        &stack.endpoint,
        &[
            ("AWS_ENDPOINT_URL_DYNAMODB", &proxy.url),
            ("TABLE_NAME", &table),
            ("TENANT_SECRET_PREFIX", &prefix),
            ("AI_SECRET_ID", &ai_secret),
            ("GRAPH_API_BASE_URL", &graph.url),
            ("ANTHROPIC_BASE_URL", &claude.url),
            // INFO for the worker's own "AI attendant answered" timing.
            ("RUST_LOG", "info"),
        ],
    );
    let mut worker = Function::start(&binary("worker", "release"), &env).await;
    let now = chrono::Utc::now().timestamp();

    // Warm up: the first invocation reads the tenant, its token and the stack secret
    // (cached per container).
    for (turn, input) in AI_TURNS.into_iter().enumerate() {
        let warm = envelope("5511900000000", turn, input, now);
        worker.invoke(&sqs_event(&warm)).await.unwrap();
    }

    // Support conversations: menu and flow turns, no AI; each turn's calls kept apart.
    let calls_before = proxy.calls().len();
    let sends_before = graph.messages().len();
    let mut times = Vec::new();
    let mut per_turn: Vec<Vec<blackbox::proxy::Call>> = vec![Vec::new(); TURNS.len()];
    for customer in 1..=CUSTOMERS {
        let customer = format!("55119{customer:08}");
        for (turn, input) in TURNS.into_iter().enumerate() {
            let event = sqs_event(&envelope(&customer, turn, input, now));
            let before = proxy.calls().len();
            let started = Instant::now();
            worker.invoke(&event).await.unwrap();
            times.push(started.elapsed());
            per_turn[turn].extend_from_slice(&proxy.calls()[before..]);
        }
    }
    let messages = CUSTOMERS * TURNS.len();
    let sends = graph.messages().len() - sends_before;
    println!(
        "worker cost per inbound message ({messages} messages of {CUSTOMERS} support conversations, {sends} replies):"
    );
    let index = index_writes(&proxy.calls());
    dynamodb_figures(
        &stack,
        &table,
        &proxy.calls()[calls_before..],
        &index,
        messages,
    )
    .await;
    for (turn, label) in TURN_LABELS.iter().enumerate() {
        println!("of which {label}:");
        dynamodb_figures(&stack, &table, &per_turn[turn], &index, CUSTOMERS).await;
    }

    // Conversations opened in reply to a campaign send: the sender's reply pointer is in
    // the table (written outside the count), the first message finds it.
    let campaign_id = "cmp_benchbenchbenchbenchbench";
    let sent_at = chrono::Utc::now().timestamp() - 3_600;
    let mut campaign_item = HashMap::from([
        ("pk".to_owned(), s(format!("CAMPAIGN#{NUMBER}"))),
        ("sk".to_owned(), s(format!("C#{campaign_id}"))),
        ("state".to_owned(), s("running")),
        ("template_name".to_owned(), s("promo_outubro")),
    ]);
    // A campaign item as the sender leaves it: its counters.
    for counter in ["n_queued", "n_sent", "n_done", "n_delivered", "n_read"] {
        campaign_item.insert(counter.to_owned(), n(10_000));
    }
    put_item(&stack, &table, campaign_item).await;
    for seq in 1..=CUSTOMERS {
        let customer = format!("55117{seq:08}");
        let pointer = HashMap::from([
            ("pk".to_owned(), s(keys::campaign_reply(NUMBER))),
            (
                "sk".to_owned(),
                s(keys::campaign_reply_entry(NUMBER, &customer)),
            ),
            ("campaign_id".to_owned(), s(campaign_id)),
            ("seq".to_owned(), n(seq)),
            ("sent_at".to_owned(), n(sent_at)),
            ("expires_at".to_owned(), n(sent_at + 7 * 86_400)),
        ]);
        put_item(&stack, &table, pointer).await;
    }
    let before = proxy.calls().len();
    for customer in 1..=CUSTOMERS {
        let customer = format!("55117{customer:08}");
        let event = sqs_event(&envelope(&customer, 0, TURNS[0], now));
        worker.invoke(&event).await.unwrap();
    }
    println!(
        "of which a new conversation's first text answering a campaign send (greeting and menu; the reply counted on the campaign):"
    );
    let index = index_writes(&proxy.calls());
    dynamodb_figures(&stack, &table, &proxy.calls()[before..], &index, CUSTOMERS).await;

    // Delivery statuses: sent, delivered and read of a reply each.
    let before = proxy.calls().len();
    for customer in 1..=CUSTOMERS {
        for status in ["sent", "delivered", "read"] {
            let update = Envelope::new(Payload::Status(StatusUpdate {
                phone_number_id: NUMBER.into(),
                customer: format!("55119{customer:08}"),
                wamid: format!("wamid.bench.out.{customer}"),
                status: status.into(),
                timestamp: now,
                error_codes: Vec::new(),
                // As Meta returns it: the event and the send the message came from.
                callback_data: Some(format!("wamid.bench.in.{customer}#0")),
                raw: serde_json::value::RawValue::from_string("{}".into()).unwrap(),
            }));
            worker.invoke(&sqs_event(&update)).await.unwrap();
        }
    }
    println!(
        "worker cost per delivery status ({} statuses):",
        CUSTOMERS * 3
    );
    let index = index_writes(&proxy.calls());
    dynamodb_figures(
        &stack,
        &table,
        &proxy.calls()[before..],
        &index,
        CUSTOMERS * 3,
    )
    .await;
    println!(
        "  SQS: webhook 1 SendMessageBatch per POST (up to 10 messages); event source 1 ReceiveMessage and 1 DeleteMessageBatch per batch of up to 10"
    );

    // The same support conversations for a tenant with three subscriptions (every event
    // type between them): the worker's calls to the hooks queue, counted through a proxy,
    // and what the publish adds to the table.
    let hooks_proxy = FaultProxy::start(&stack.endpoint).await;
    let hooks_queue = stack
        .sqs
        .create_queue()
        .queue_name(unique("bench-hooks"))
        .send()
        .await
        .expect("hooks queue")
        .queue_url
        .expect("queue url");
    let mut subscribed_tenant = shared::tenant::demo_always_open();
    subscribed_tenant.phone_number_id = SUBSCRIBED_NUMBER.into();
    stack.put_tenant(&table, &subscribed_tenant).await;
    let subscriptions: Vec<shared::hooks::Subscribed> = [
        vec![EventType::MessageReceived, EventType::MessageSent],
        vec![
            EventType::ConversationStarted,
            EventType::ConversationHandedOver,
        ],
        EventType::ALL.to_vec(),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, events)| shared::hooks::Subscribed {
        id: format!("hook_bench{i}"),
        events,
    })
    .collect();
    stack
        .dynamodb
        .update_item()
        .table_name(&table)
        .key("pk", s(keys::tenant(SUBSCRIBED_NUMBER)))
        .key("sk", s(keys::CONFIG))
        .update_expression("SET #hooks = :hooks")
        .expression_attribute_names("#hooks", keys::TENANT_HOOKS)
        .expression_attribute_values(":hooks", s(serde_json::to_string(&subscriptions).unwrap()))
        .send()
        .await
        .expect("subscriptions summary");
    stack
        .named_secret(
            &format!("{prefix}{SUBSCRIBED_NUMBER}"),
            r#"{"whatsapp_token":"bench"}"#,
        )
        .await;
    let mut hooks_env = env.clone();
    hooks_env.push(("HOOKS_QUEUE_URL".into(), hooks_queue.clone()));
    hooks_env.push(("AWS_ENDPOINT_URL_SQS".into(), hooks_proxy.url.clone()));
    let mut subscribed_worker = Function::start(&binary("worker", "release"), &hooks_env).await;
    let warm = subscribed_envelope("5511900000001", 0, TURNS[0], now);
    subscribed_worker.invoke(&sqs_event(&warm)).await.unwrap();
    let before = proxy.calls().len();
    let sqs_before = hooks_proxy.calls().len();
    for customer in 1..=CUSTOMERS {
        let customer = format!("55116{customer:08}");
        for (turn, input) in TURNS.into_iter().enumerate() {
            let event = sqs_event(&subscribed_envelope(&customer, turn, input, now));
            subscribed_worker.invoke(&event).await.unwrap();
        }
    }
    let sqs_calls = &hooks_proxy.calls()[sqs_before..];
    let sends = sqs_calls
        .iter()
        .filter(|call| call.target.ends_with("SendMessage"))
        .count();
    println!(
        "worker cost per inbound message with three subscriptions ({messages} messages of the same support conversations):"
    );
    println!(
        "  SQS SendMessage to the hooks queue: {:.2} per message (at most one per record; {} other SQS calls)",
        sends as f64 / messages as f64,
        sqs_calls.len() - sends
    );
    let index = index_writes(&proxy.calls());
    dynamodb_figures(&stack, &table, &proxy.calls()[before..], &index, messages).await;
    println!(
        "  (without subscriptions, above: no SQS call and no publish write; the tenant's subscriptions ride on its config item, read with it)"
    );
    subscribed_worker.kill();
    let mut flow_times = times;
    print_times(
        "worker invocation, one message (release, local stack and fake Graph on loopback)",
        &mut flow_times,
    );

    // AI attendant turns on the demo tenant: Claude answers at once on loopback, so the
    // time measured is the worker's own.
    let mut ai_times = Vec::new();
    // The same conversations' menu turns, on the same (grown) table: moto slows down as the
    // table grows, so the AI turns are compared with these.
    let mut menu_times = Vec::new();
    let mut ai_calls = Vec::new();
    claude.clear();
    for customer in 1..=CUSTOMERS {
        let customer = format!("55118{customer:08}");
        claude.script([
            ClaudeReply::text(
                "Atendemos de segunda a sexta, das 8h às 20h, e aos sábados, das 9h às 13h.",
                0,
                0,
            ),
            ClaudeReply::tool("faq_lookup", json!({"topic": "planos"}), 0, 0),
            ClaudeReply::text(
                "O plano de 600 Mega custa R$ 109,90 por mês, com Wi-Fi 6 incluso.",
                0,
                0,
            ),
            ClaudeReply::text("A instalação é gratuita e feita em até 3 dias úteis.", 0, 0),
        ]);
        for (turn, input) in AI_TURNS.into_iter().enumerate() {
            let event = sqs_event(&envelope(&customer, turn, input, now));
            let before = proxy.calls().len();
            let started = Instant::now();
            worker.invoke(&event).await.unwrap();
            if turn >= AI_MEASURED_FROM {
                ai_times.push(started.elapsed());
                ai_calls.extend_from_slice(&proxy.calls()[before..]);
            } else {
                menu_times.push(started.elapsed());
            }
        }
    }
    let questions = CUSTOMERS * (AI_TURNS.len() - AI_MEASURED_FROM);
    let requests = claude.requests();
    let sizes: Vec<usize> = requests.iter().map(|r| r.body.to_string().len()).collect();
    let system: usize = requests[0].body["system"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|block| block["text"].as_str())
        .map(str::len)
        .sum();
    let tools = requests[0].body["tools"].to_string().len();
    println!(
        "AI attendant, per question ({questions} questions of {CUSTOMERS} conversations on the demo tenant, one in three needing a FAQ lookup):"
    );
    println!(
        "  Claude requests: {:.2} per question (1 for a direct answer, 2 with a FAQ lookup)",
        requests.len() as f64 / questions as f64
    );
    println!(
        "  request size: system prompt {system} bytes, tools {tools} bytes; whole request {} bytes for the first question, {} for the third (history grows per turn), {} for the lookup's second round",
        sizes[0], sizes[3], sizes[2]
    );
    println!(
        "  input tokens, estimated at 4 bytes per token (the real count needs a key): first question ~{}, third ~{}",
        sizes[0] / 4,
        sizes[3] / 4
    );
    let index = index_writes(&proxy.calls());
    dynamodb_figures(&stack, &table, &ai_calls, &index, questions).await;
    let session = stack
        .dynamodb
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(shared::store::keys::conversation(
                NUMBER,
                &format!("55118{CUSTOMERS:08}"),
            )),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("SESSION".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_default();
    let session_bytes: usize = session
        .iter()
        .map(|(name, value)| name.len() + attribute_bytes(value))
        .sum();
    println!(
        "  session item after three questions: {session_bytes} bytes ({} WCU per session write)",
        session_bytes.div_ceil(1024)
    );
    print_times(
        "worker invocation with an AI answer (fake Claude on loopback)",
        &mut ai_times,
    );
    let mut in_answer: Vec<Duration> = worker
        .output()
        .iter()
        .filter(|line| line.contains("AI attendant answered"))
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|log| log["elapsed_ms"].as_u64())
        .map(Duration::from_millis)
        .collect();
    print_times(
        "of which asking Claude (the worker's request, the loopback fake's answer, FAQ rounds)",
        &mut in_answer,
    );
    print_times(
        "menu turns of the same conversations (greeting and the attendant's option)",
        &mut menu_times,
    );
    let added =
        percentile(&ai_times, 0.5).as_secs_f64() - percentile(&menu_times, 0.5).as_secs_f64();
    println!(
        "  added worker time per AI turn, excluding Claude's latency: {:.1} ms (median AI turn minus median menu turn)",
        added * 1e3
    );
}
