#!/usr/bin/env bash
# Every test: formatting and lints, unit and property tests, black-box tests of the real
# binaries on the local stack, the sample events and a scripted conversation through
# `cargo lambda watch`, the platform API's contract (schemathesis against the real api
# binary), the SAM template (validate --lint, arm64 build), every sample event
# through `sam local invoke` and `sam local start-api` in the arm64 containers, and
# benchmarks compiled (not run).
# Installs what it needs and stops what it started.
source "$(dirname "$0")/common.sh"

warn_if_low_disk 8
install_toolchain
# The tests use the local fake of Claude, whatever key the shell holds.
unset ANTHROPIC_API_KEY

stage "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The layer rule: domain and ports build without any AWS SDK or HTTP client.
cargo check -p shared --locked --quiet
if cargo tree -p shared -e normal --prefix none | grep -E '^(aws-|reqwest|hyper) '; then
  echo "shared without features links an SDK or HTTP client (above)" >&2
  exit 1
fi

stage "build the binaries (with their test hooks: the worker's clock override and crash points, the hook delivery's local HTTPS subscriber)"
cargo build --workspace --bins --locked --features worker/test-hooks,hook-delivery/test-hooks

stage "unit, property and black-box tests"
start_stack
cargo test --workspace --locked

stage "sample events through cargo lambda watch"
load_demo_tenant --always-open
start_watch
.venv/bin/python infra/local/invoke_events.py --port "$WATCH_PORT"
kill -- "-$WATCH_PGID" 2>/dev/null || true

stage "a scripted conversation through webhook, desk, queue, poller and worker under cargo lambda watch"
# chat.py runs the local fakes, target/debug/local_fakes: built with the workspace's binaries.
write_chat_env
start_watch "$ROOT/.local/chat.env"
.venv/bin/python infra/local/chat.py --port "$WATCH_PORT" --graph-port "$GRAPH_PORT" \
  --chatwoot-port "$CHATWOOT_PORT" "${AI_ARGS[@]}" --script infra/local/demo-chat.txt --expect-replies 19

stage "the platform API's contract: schemathesis against the real api binary with two tenants' keys and the platform key"
kill -- "-$WATCH_PGID" 2>/dev/null || true
WATCH_PGID=""
CONTRACT_IN_TEST_SH=1 bash infra/local/contract.sh

stage "SAM template"
sam validate --lint
# The arm64 build checks the template and the cross-compilation, and gives the next stage
# the functions' binaries. Here without optimisation or LTO: SAM builds each function on its
# own (eight `shared` builds with different features), which optimised took 17 of the
# command's minutes. A deploy's own `sam build` uses the release profile (fat LTO).
CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 \
  sam build --beta-features

stage "sam local invoke and start-api: every sample event in the functions' arm64 containers (qemu), against the local stack"
# Docker, and SAM's base image built from debootstrap once (cached in .local/sam-base).
start_sam_docker
start_stack --host "$GATEWAY"
load_demo_tenant --always-open
.venv/bin/python infra/local/invoke_events.py --sam --host "$GATEWAY"
.venv/bin/python infra/local/invoke_events.py --start-api --host "$GATEWAY"

stage "benchmarks compile (with the dev profile: this checks they build, bench.sh runs them optimised)"
cargo bench --workspace --no-run --locked --profile dev

stage "all tests passed"
