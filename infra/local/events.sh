#!/usr/bin/env bash
# Sends every sample event of events/webhook/ to the webhook under `cargo lambda watch`, as
# Meta would, and prints each answer and every envelope that reached the inbound queue.
source "$(dirname "$0")/common.sh"

install_toolchain
cargo build -p webhook
start_stack
start_watch
.venv/bin/python infra/local/invoke_events.py --port "$WATCH_PORT" --show
