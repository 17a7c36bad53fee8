//! Cold start and memory of the release webhook binary under a Lambda Runtime API on
//! loopback, with its secret and queue served by the local stack. Prints figures; asserts
//! nothing about time.
//!
//! Needs the local stack (`AWS_ENDPOINT_URL`) and `cargo build --release -p webhook`;
//! `infra/local/bench.sh` does both.

use std::time::{Duration, Instant};

use blackbox::http::{self, TEST_VERIFY_TOKEN, app_secrets_json, signed_post, status};
use blackbox::meta::corpus;
use blackbox::runtime::{Function, binary};
use blackbox::stack::Stack;

const RUNS: usize = 30;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let stack = Stack::connect().await;
    let queue_url = stack.fifo_queue("bench").await;
    let secret_arn = stack.secret(&app_secrets_json()).await;
    let env = stack.function_env(
        &stack.endpoint,
        &[
            ("APP_SECRET_ID", &secret_arn),
            ("INBOUND_QUEUE_URL", &queue_url),
            ("RUST_LOG", "warn"),
        ],
    );
    let webhook = binary("webhook", "release");
    let verify = http::verify("subscribe", TEST_VERIFY_TOKEN, "42");

    let mut cold = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        let mut function = Function::start(&webhook, &env).await;
        let response = function.invoke(&verify).await.expect("verify answered");
        cold.push(started.elapsed());
        assert_eq!(status(&response), 200);
    }
    cold.sort();
    println!(
        "cold start to first GET verify response ({RUNS} runs): min {:.1} ms, median {:.1} ms, p95 {:.1} ms",
        cold[0].as_secs_f64() * 1e3,
        percentile(&cold, 0.5).as_secs_f64() * 1e3,
        percentile(&cold, 0.95).as_secs_f64() * 1e3,
    );

    let mut function = Function::start(&webhook, &env).await;
    let cases = corpus();
    let started = Instant::now();
    for (index, case) in cases.iter().enumerate() {
        let body = serde_json::to_vec(&case.fresh_body(&format!("bench{index}"))).unwrap();
        let response = function
            .invoke(&signed_post(&body))
            .await
            .expect("post answered");
        assert_eq!(status(&response), 200);
    }
    let elapsed = started.elapsed();
    println!(
        "conformance corpus: {} POSTs in {:.0} ms (local stack round trips included)",
        cases.len(),
        elapsed.as_secs_f64() * 1e3
    );
    match function.peak_rss_kib() {
        Some(kib) => println!("peak RSS after the corpus: {:.1} MiB", kib as f64 / 1024.0),
        None => println!("peak RSS after the corpus: unavailable (no /proc)"),
    }
    let size = std::fs::metadata(&webhook).map(|m| m.len()).unwrap_or(0);
    println!(
        "release binary ({}): {:.2} MiB",
        std::env::consts::ARCH,
        size as f64 / (1024.0 * 1024.0)
    );
    stack.drain(&queue_url).await;
}
