#!/usr/bin/env bash
# The main job on the local stack: start moto and the webhook under `cargo lambda watch`, send
# the sample events from events/webhook/ as Meta would, print what reached the inbound queue,
# and stop everything on exit.
source "$(dirname "$0")/common.sh"

install_toolchain
cargo build -p webhook
start_stack
start_watch
echo "webhook running under cargo lambda watch on 127.0.0.1:$WATCH_PORT"
echo
.venv/bin/python infra/local/invoke_events.py --port "$WATCH_PORT" --show
