#!/usr/bin/env bash
# Benchmarks: the webhook's in-process cost beside its floor (criterion), and the release
# binary's cold start, peak RSS and size, the arm64 size as deployed; engine::step per
# event; the platform API's cold start, CPU per call and memory. Prints figures.
source "$(dirname "$0")/common.sh"

install_toolchain
cargo build --release -p webhook -p worker -p sla-sweep -p api -p campaign-sender
cargo build -p campaign-dispatch
stage "in-process: verify + parse + build entries vs HMAC + serde_json floor"
cargo bench -p webhook --bench ingress -- --noplot
stage "engine::step per event (pure, demo tenant)"
cargo bench -p shared --bench engine -- --noplot
start_stack
stage "cold start, memory, size"
cargo bench -p blackbox --bench cold_start
stage "worker: DynamoDB calls and capacity per message, time per invocation"
cargo bench -p blackbox --bench worker_costs
stage "AI attendant: cost-weighted input tokens per question, with and without prompt caching"
cargo bench -p blackbox --bench ai_cache
stage "platform API: cold start, CPU per call (a list, a send, a report), peak memory"
cargo bench -p blackbox --bench api_costs
stage "SLA sweep: DynamoDB reads per run as queues grow (100, 10,000 waiting)"
cargo bench -p blackbox --bench sweep_costs
stage "campaigns: 10,000 recipients at 80/s (CAMPAIGN_BENCH_100K=1: 100,000), worst second, calls and cost per recipient"
cargo bench -p blackbox --bench campaign_costs
stage "hook delivery: latency from an event to the subscriber's receipt (the test-hooks debug build, local HTTPS subscriber)"
cargo build -p hook-delivery --features test-hooks
cargo bench -p blackbox --bench hook_latency
stage "arm64 build as deployed"
cargo lambda build --release --arm64 -p webhook -p worker -p desk -p sla-sweep -p off-hours -p api -p campaign-dispatch -p campaign-sender -p hook-delivery >/dev/null
for function in webhook worker desk sla-sweep off-hours api campaign-dispatch campaign-sender hook-delivery; do
  ls -l "target/lambda/$function/bootstrap" | awk -v f="$function" '{printf "stripped arm64 %s bootstrap: %.2f MiB\n", f, $5/1048576}'
done
