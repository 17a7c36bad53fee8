#!/usr/bin/env bash
# The main job on the local stack: a conversation with the bot, from the customer's side,
# through the real webhook and worker binaries, and the agent's side through the desk. Starts moto with the template's resources,
# loads infra/tenants/demo.yaml with the ops CLI, runs the functions under
# `cargo lambda watch`, and opens the terminal chat (chat.py). Without a terminal (or with
# SCRIPT=file) it plays infra/local/demo-chat.txt. Stops everything on exit.
source "$(dirname "$0")/common.sh"

install_toolchain
cargo build -p webhook -p worker -p desk -p sla-sweep -p ops
start_stack
load_demo_tenant
write_chat_env
start_watch "$ROOT/.local/chat.env"
echo "functions running under cargo lambda watch on 127.0.0.1:$WATCH_PORT; replies arrive at a local Graph API sink"
echo

script=${SCRIPT:-}
if [ -z "$script" ] && [ ! -t 0 ]; then
  script=infra/local/demo-chat.txt
fi
.venv/bin/python infra/local/chat.py --port "$WATCH_PORT" --sink-port "$SINK_PORT" \
  --chatwoot-port "$CHATWOOT_PORT" "${AI_ARGS[@]}" ${script:+--script "$script"}
