#!/usr/bin/env bash
# Every test: formatting and lints, unit and property tests, black-box tests of the real
# binaries on the local stack, the sample events and a scripted conversation through
# `cargo lambda watch`, the SAM template (validate --lint, arm64 build), and benchmarks
# compiled (not run).
# Installs what it needs and stops what it started.
source "$(dirname "$0")/common.sh"

check_disk 8
install_toolchain
# The tests use the local fake of Claude, whatever key the shell holds.
unset ANTHROPIC_API_KEY

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== build the binaries (the worker with its test hooks: clock override, crash points)"
cargo build --workspace --bins --locked --features worker/test-hooks

echo "== unit, property and black-box tests"
start_stack
cargo test --workspace --locked

echo "== sample events through cargo lambda watch"
load_demo_tenant --always-open
start_watch
.venv/bin/python infra/local/invoke_events.py --port "$WATCH_PORT"
kill -- "-$WATCH_PGID" 2>/dev/null || true

echo "== a scripted conversation through webhook, desk, queue, poller and worker under cargo lambda watch"
write_chat_env
start_watch "$ROOT/.local/chat.env"
.venv/bin/python infra/local/chat.py --port "$WATCH_PORT" --sink-port "$SINK_PORT" \
  --chatwoot-port "$CHATWOOT_PORT" "${AI_ARGS[@]}" --script infra/local/demo-chat.txt --expect-replies 19

echo "== SAM template"
sam validate --lint
sam build --beta-features

echo "== benchmarks compile (with the dev profile: this checks they build, bench.sh runs them optimised)"
cargo bench --workspace --no-run --locked --profile dev

echo "== all tests passed"
