//! What a campaign costs and how closely it keeps its pace: 10,000 recipients (100,000 with
//! `CAMPAIGN_BENCH_100K=1`; any count with `CAMPAIGN_BENCH_RECIPIENTS`) at 80/s (any pace
//! with `CAMPAIGN_BENCH_PACE`: the local stack's DynamoDB, not the sender, caps the rate
//! near 35 a second on 2 cores, so a pace under that shows the pacer's own) through the
//! real dispatcher and four release sender processes on the local stack, against the fake
//! Graph. Prints the achieved rate and its worst second, DynamoDB and SQS calls per
//! recipient (counted through a proxy), and the AWS cost of a 100,000-recipient campaign
//! from those counts. Asserts nothing about time.
//!
//! Needs the local stack and `cargo build --release -p campaign-sender`, and a debug
//! `campaign-dispatch`; `infra/local/bench.sh` does both.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use blackbox::campaign::{CampaignStack, worst_second};
use blackbox::proxy::FaultProxy;

/// On-demand and request prices (us-east-1), per unit.
const WRITE_UNIT: f64 = 0.625 / 1e6;
const READ_UNIT: f64 = 0.125 / 1e6;
const SQS_REQUEST: f64 = 0.40 / 1e6;
const LAMBDA_GB_SECOND_ARM: f64 = 0.000_013_333_4;
const LAMBDA_REQUEST: f64 = 0.20 / 1e6;

#[tokio::main]
async fn main() {
    let recipients: u32 = match std::env::var("CAMPAIGN_BENCH_RECIPIENTS") {
        Ok(count) => count.parse().expect("a number of recipients"),
        Err(_) if std::env::var_os("CAMPAIGN_BENCH_100K").is_some() => 100_000,
        Err(_) => 10_000,
    };
    let pace: u32 = std::env::var("CAMPAIGN_BENCH_PACE")
        .map_or(80, |pace| pace.parse().expect("a pace in sends per second"));
    let mut campaign = CampaignStack::start(pace, Duration::from_secs(30)).await;
    let proxy = FaultProxy::start(&campaign.stack.endpoint).await;
    campaign.route_through(&proxy.url);
    campaign.approved_campaign(recipients).await;
    campaign.dispatch().await;
    // The bench script builds the senders in release; `CAMPAIGN_BENCH_PROFILE=debug` for a
    // quick look without that build.
    let profile = std::env::var("CAMPAIGN_BENCH_PROFILE").unwrap_or_else(|_| "release".into());
    let senders = campaign.senders(4, &profile).await;
    let started = Instant::now();
    let limit = Duration::from_secs(u64::from(recipients) / u64::from(pace.min(20)) + 120);
    let invocations = campaign.run(senders, limit).await;
    let elapsed = started.elapsed();

    let sends = campaign.sends();
    let times: Vec<Instant> = sends.iter().map(|(at, _)| *at).collect();
    let first = times.iter().min().copied().unwrap_or(started);
    let last = times.iter().max().copied().unwrap_or(started);
    let span = (last - first).as_secs_f64().max(0.001);
    println!(
        "recipients {recipients}, sent {}, state {}",
        sends.len(),
        campaign.state().await
    );
    println!(
        "achieved {:.1} sends/s against a pace of {pace} (first to last send {span:.1} s); worst second {}",
        sends.len() as f64 / span,
        worst_second(&times)
    );

    let mut calls: BTreeMap<String, usize> = BTreeMap::new();
    let (mut writes, mut reads) = (0.0, 0.0);
    for call in proxy.calls() {
        let operation = call
            .target
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        match operation.as_str() {
            // Items under 1 KB: one write unit each; a failed condition is billed too.
            "UpdateItem" | "PutItem" | "DeleteItem" => writes += 1.0,
            "TransactWriteItems" => writes += 2.0 * call.transact_items as f64,
            "GetItem" => reads += 1.0,
            // Consistent: one unit per 4 KB returned (at least one); batch reads are
            // eventually consistent, half a unit per item.
            "Query" => {
                let bytes = call.response["Items"].to_string().len() as f64;
                reads += (bytes / 4096.0).ceil().max(1.0);
            }
            "BatchGetItem" => {
                let keys: usize = call.request["RequestItems"]
                    .as_object()
                    .map(|tables| {
                        tables
                            .values()
                            .map(|t| t["Keys"].as_array().map_or(0, Vec::len))
                            .sum()
                    })
                    .unwrap_or(0);
                reads += 0.5 * keys as f64;
            }
            _ => {}
        }
        *calls.entry(operation).or_default() += 1;
    }
    let per = |n: f64| n / f64::from(recipients);
    println!("calls per recipient:");
    for (operation, count) in &calls {
        println!("  {operation}: {:.3}", per(*count as f64));
    }
    let sqs: usize = calls
        .iter()
        .filter(|(op, _)| {
            [
                "SendMessageBatch",
                "SendMessage",
                "ReceiveMessage",
                "DeleteMessage",
            ]
            .contains(&op.as_str())
        })
        .map(|(_, n)| n)
        .sum();
    // The event source's receive and delete per batch are not in the proxy's count.
    let sqs_requests = per(sqs as f64) + 2.0 * per(invocations as f64);
    println!(
        "write units {:.2}, read units {:.2}, SQS requests {:.3} per recipient; {invocations} invocations in {:.0} s",
        per(writes),
        per(reads),
        sqs_requests,
        elapsed.as_secs_f64()
    );
    let scale = 100_000.0;
    let dynamodb = scale * (per(writes) * WRITE_UNIT + per(reads) * READ_UNIT);
    let queue = scale * sqs_requests * SQS_REQUEST;
    // Four senders of 128 MB busy for the whole run: an upper bound on billed duration.
    // At the default pace of a deployed number, whatever pace this run kept.
    let seconds_at_pace = scale / 80.0;
    let lambda =
        seconds_at_pace * 4.0 * 0.125 * LAMBDA_GB_SECOND_ARM + scale / 50.0 * LAMBDA_REQUEST;
    println!(
        "100,000 recipients: DynamoDB ${dynamodb:.3}, SQS ${queue:.4}, Lambda ${lambda:.3} (at most), total ${:.3}, besides Meta's per-message price",
        dynamodb + queue + lambda
    );
}
