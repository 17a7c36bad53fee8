//! What one SLA sweep costs as queues grow: DynamoDB calls (counted through a proxy) and
//! the read capacity they consume, for 100 and 10,000 customers waiting in one department,
//! in a table that also holds 2,000 unrelated conversation items. The sweep queries each
//! department's queue partition and never scans the table. Prints figures; asserts nothing
//! about time.
//!
//! Needs the local stack (`AWS_ENDPOINT_URL`) and `cargo build --release -p sla-sweep`;
//! `infra/local/bench.sh` does both.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use blackbox::proxy::FaultProxy;
use blackbox::runtime::{Function, binary};
use blackbox::stack::Stack;
use chrono::{Duration, Utc};
use serde_json::json;

const NUMBER: &str = "106540352242922";

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// Writes items 25 at a time; returns their total size as DynamoDB counts it (names and
/// values), which is what reads are billed on.
async fn write(stack: &Stack, table: &str, items: Vec<HashMap<String, AttributeValue>>) -> usize {
    let size: usize = items
        .iter()
        .flat_map(|item| item.iter())
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(text) | AttributeValue::N(text) => text.len(),
                    _ => 8,
                }
        })
        .sum();
    for chunk in items.chunks(25) {
        let requests = chunk
            .iter()
            .map(|item| {
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item.clone()))
                            .build()
                            .unwrap(),
                    )
                    .build()
            })
            .collect();
        stack
            .dynamodb
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .expect("batch write");
    }
    size
}

/// `waiting` customers in the general queue, entered over the last 5 minutes (inside the
/// SLA: the sweep reads everything and queues nothing), each told a place already.
fn queue_entries(waiting: usize) -> Vec<HashMap<String, AttributeValue>> {
    let now = Utc::now();
    (0..waiting)
        .map(|i| {
            // The first in line came first: told places match the queue's order.
            let entered =
                now - Duration::milliseconds(300_000 * (waiting - i) as i64 / waiting as i64);
            let customer = format!("55119{i:08}");
            HashMap::from([
                (
                    "pk".into(),
                    s(shared::store::keys::human_queue(NUMBER, "geral")),
                ),
                (
                    "sk".into(),
                    s(format!("2#{:013}#{customer}", entered.timestamp_millis())),
                ),
                ("customer".into(), s(customer)),
                ("reason".into(), s("asked")),
                ("priority".into(), s("media")),
                ("entered_at".into(), s(entered.to_rfc3339())),
                (
                    "told_position".into(),
                    AttributeValue::N((i + 1).to_string()),
                ),
                (
                    "expires_at".into(),
                    AttributeValue::N((now + Duration::days(90)).timestamp().to_string()),
                ),
            ])
        })
        .collect()
}

/// Conversation items the sweep must not read.
fn unrelated(count: usize) -> Vec<HashMap<String, AttributeValue>> {
    (0..count)
        .map(|i| {
            HashMap::from([
                (
                    "pk".into(),
                    s(shared::store::keys::conversation(
                        NUMBER,
                        &format!("5521{i:09}"),
                    )),
                ),
                ("sk".into(), s("SESSION")),
                ("session".into(), s("{\"state\":{\"name\":\"menu\"}}")),
            ])
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let stack = Stack::connect().await;
    let tenant = blackbox::conversation::demo();
    println!(
        "SLA sweep: one scheduled run (release binary, local stack), demo tenant with {} departments",
        tenant.departments.len()
    );
    for waiting in [100, 10_000] {
        let table = stack.table().await;
        stack.put_tenant(&table, &tenant).await;
        write(&stack, &table, unrelated(2_000)).await;
        let bytes = write(&stack, &table, queue_entries(waiting)).await;
        let proxy = FaultProxy::start(&stack.endpoint).await;
        let queue_url = stack.fifo_queue("sweep-bench").await;
        let env = stack.function_env(
            &stack.endpoint,
            &[
                ("TABLE_NAME", &table),
                ("INBOUND_QUEUE_URL", &queue_url),
                ("AWS_ENDPOINT_URL_DYNAMODB", &proxy.url),
                ("RUST_LOG", "warn"),
            ],
        );
        let mut sweep = Function::start(&binary("sla-sweep", "release"), &env).await;
        let started = Instant::now();
        let report = sweep
            .invoke(&json!({"time": Utc::now().to_rfc3339()}))
            .await
            .expect("the sweep ran");
        let elapsed = started.elapsed();
        let mut calls: BTreeMap<String, usize> = BTreeMap::new();
        for call in proxy.calls() {
            let operation = call
                .target
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_owned();
            *calls.entry(operation).or_default() += 1;
        }
        // Eventually consistent reads: half a unit per 4 KB read, per page.
        let estimated_units = (bytes as f64 / 4096.0).ceil() / 2.0;
        println!("  {waiting} waiting:");
        println!(
            "    DynamoDB calls: {calls:?} (no Scan); {} partitions queried (the tenant list, one per department)",
            report["queries"]
        );
        println!(
            "    read capacity: {} RCU as moto reports it (not size-based), {estimated_units:.1} RCU from the {:.0} KB of queue items (eventually consistent)",
            report["read_units"],
            bytes as f64 / 1024.0
        );
        println!(
            "    waiting {}, warnings {}, breaches {}, place updates {}; run took {:.0} ms against moto",
            report["waiting"],
            report["warnings"],
            report["breaches"],
            report["position_updates"],
            elapsed.as_secs_f64() * 1e3
        );
    }
}
