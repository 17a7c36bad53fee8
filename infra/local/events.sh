#!/usr/bin/env bash
# Sends every sample event of events/ to its function under `cargo lambda watch` (the
# webhook as Meta would call it, the desk as Chatwoot would, the schedules as EventBridge
# Scheduler would) and prints each answer and every envelope that reached the inbound queue.
source "$(dirname "$0")/common.sh"

install_toolchain
cargo build -p webhook -p desk -p sla-sweep -p off-hours -p ops
start_stack
load_demo_tenant
start_watch
.venv/bin/python infra/local/invoke_events.py --port "$WATCH_PORT" --show
