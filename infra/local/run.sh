#!/usr/bin/env bash
# The main job on the local stack: a conversation with the bot, from the customer's side,
# through the real webhook and worker binaries, and the agent's side through the desk.
# Starts moto with the template's resources, loads infra/tenants/demo.yaml with the ops CLI,
# runs the functions under `cargo lambda watch`, and opens the terminal chat (chat.py; /help
# lists its commands). Without a terminal (or with SCRIPT=file) it plays
# infra/local/demo-chat.txt. Stops everything on exit.
#
#   bash infra/local/run.sh                  the demo tenant keeps its business hours
#   bash infra/local/run.sh --always-open    chat as if it were open (also ALWAYS_OPEN=1)
#
# It says at start whether the demo tenant is open right now in its time zone
# (America/Sao_Paulo): while it is closed the bot answers the first message with its
# off-hours text and then stays silent until it opens.

usage() {
  sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
}

always_open=""
case ${ALWAYS_OPEN:-} in
  "" | 0 | false | no) ;;
  *) always_open=1 ;;
esac
for arg in "$@"; do
  case $arg in
    --always-open) always_open=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "run.sh: unknown argument '$arg'" >&2
      usage >&2
      exit 2
      ;;
  esac
done

source "$(dirname "$0")/common.sh"

# Open or closed right now, and with the hint to restart with --always-open when closed.
say_demo_hours() {
  .venv/bin/python infra/local/local_tenant.py --status ${always_open:+--always-open}
}

install_toolchain
say_demo_hours
cargo build -p webhook -p worker -p desk -p sla-sweep -p ops
build_local_fakes
start_stack
load_demo_tenant ${always_open:+--always-open}
write_chat_env
start_watch "$ROOT/.local/chat.env"
echo "functions running under cargo lambda watch on 127.0.0.1:$WATCH_PORT; replies arrive at a local fake of the Graph API"
echo
say_demo_hours
echo

script=${SCRIPT:-}
if [ -z "$script" ] && [ ! -t 0 ]; then
  script=infra/local/demo-chat.txt
fi
.venv/bin/python infra/local/chat.py --port "$WATCH_PORT" --graph-port "$GRAPH_PORT" \
  --chatwoot-port "$CHATWOOT_PORT" "${AI_ARGS[@]}" ${script:+--script "$script"}
