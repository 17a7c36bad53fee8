//! The platform API's release binary under a Lambda Runtime API on loopback, against the
//! local stack: cold start to the first answer, CPU time per call of the api process for a
//! list, a send and a report (the local stack's own time is not in it), and peak memory.
//! Prints figures; asserts only that the calls succeeded.
//!
//! Needs the local stack (`AWS_ENDPOINT_URL`) and `cargo build --release -p api`;
//! `infra/local/bench.sh` does both.

use std::time::{Duration, Instant};

use blackbox::api::Api;
use blackbox::runtime::{Function, binary};
use blackbox::stack::Stack;
use serde_json::{Value, json};
use shared::platform::access::{Owner, Scope};

const TENANT: &str = "106540352242922";
const CALLS: usize = 200;
const COLD_RUNS: usize = 20;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Mean CPU time of the api process per call of `path`, over `CALLS` calls.
async fn cpu_per_call(
    api: &mut Api,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
    name: &str,
) {
    let first = api.call(method, path, Some(key), body.as_ref()).await;
    assert!((200..300).contains(&first.status), "{name}: {first:?}");
    let before = api.function.cpu_time().expect("/proc");
    let started = Instant::now();
    for index in 0..CALLS {
        let body = body.clone().map(|mut body| {
            if let Some(text) = body.pointer_mut("/content/text/body") {
                *text = Value::from(format!("bench {index}"));
            }
            body
        });
        let answer = api.call(method, path, Some(key), body.as_ref()).await;
        assert!((200..300).contains(&answer.status), "{name}: {answer:?}");
    }
    let cpu = api.function.cpu_time().expect("/proc") - before;
    println!(
        "{name}: {:.2} ms CPU per call in the api process; {:.1} ms wall per call with the local stack ({CALLS} calls)",
        cpu.as_secs_f64() * 1e3 / CALLS as f64,
        started.elapsed().as_secs_f64() * 1e3 / CALLS as f64
    );
}

#[tokio::main]
async fn main() {
    let stack = Stack::connect().await;
    let mut api = Api::start_with(
        &stack,
        &[("RUST_LOG", "warn"), ("API_CALLS_PER_MINUTE", "100000")],
        "release",
    )
    .await;
    let mut tenant = shared::tenant::demo();
    tenant.phone_number_id = TENANT.into();
    stack.put_tenant(&api.table, &tenant).await;
    let key = api.key(Owner::Tenant(TENANT.into()), &[Scope::Admin]).await;

    // Cold start: a new process until its first authenticated answer.
    let env = api.env.clone();
    let mut cold = Vec::with_capacity(COLD_RUNS);
    for _ in 0..COLD_RUNS {
        let started = Instant::now();
        let mut function = Function::start(&binary("api", "release"), &env).await;
        let event = blackbox::api::event(
            "GET",
            "/v1/me",
            json!({"authorization": format!("Bearer {key}")}),
            None,
        );
        let answer = function.invoke(&event).await.expect("answered");
        cold.push(started.elapsed());
        assert_eq!(answer["statusCode"], 200, "{answer}");
    }
    cold.sort();
    println!(
        "cold start to the first authenticated answer ({COLD_RUNS} runs): min {:.1} ms, median {:.1} ms, p95 {:.1} ms",
        cold[0].as_secs_f64() * 1e3,
        percentile(&cold, 0.5).as_secs_f64() * 1e3,
        percentile(&cold, 0.95).as_secs_f64() * 1e3
    );

    for _ in 0..30 {
        api.call(
            "POST",
            &format!("/v1/tenants/{TENANT}/keys"),
            Some(&key),
            Some(&json!({"name": "bench", "scopes": ["read"]})),
        )
        .await;
    }
    cpu_per_call(
        &mut api,
        "GET",
        &format!("/v1/tenants/{TENANT}/keys?limit=20"),
        &key,
        None,
        "list (keys, 20 a page)",
    )
    .await;
    cpu_per_call(
        &mut api,
        "GET",
        "/v1/me",
        &key,
        None,
        "who am I (authentication and rate limit only)",
    )
    .await;
    cpu_per_call(
        &mut api,
        "GET",
        &format!("/v1/tenants/{TENANT}/conversations?limit=50"),
        &key,
        None,
        "list (conversations, 50 a page)",
    )
    .await;
    // A template goes any time: each call reads the session, puts its tracking item and
    // queues the event.
    let send = json!({
        "customer": "5511988887777",
        "content": {"template": {"name": "retomar_atendimento", "language": "pt_BR"}}
    });
    cpu_per_call(
        &mut api,
        "POST",
        &format!("/v1/tenants/{TENANT}/messages"),
        &key,
        Some(send),
        "send (a template: session read, tracking put, queued)",
    )
    .await;
    cpu_per_call(
        &mut api,
        "GET",
        &format!("/v1/tenants/{TENANT}/reports/daily?from=2026-11-01&to=2026-11-30"),
        &key,
        None,
        "report (30 days)",
    )
    .await;

    match api.function.peak_rss_kib() {
        Some(kib) => println!(
            "peak RSS of the api process: {:.1} MiB",
            kib as f64 / 1024.0
        ),
        None => println!("peak RSS: unavailable (no /proc)"),
    }
    let size = std::fs::metadata(binary("api", "release"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "release binary ({}): {:.2} MiB",
        std::env::consts::ARCH,
        size as f64 / (1024.0 * 1024.0)
    );
}
