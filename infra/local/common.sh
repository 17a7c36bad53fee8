# Shared by run.sh and test.sh: install the pinned toolchain, start and stop the local stack
# and `cargo lambda watch`, and clean up whatever was started, however the script ends.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
WATCH_PGID=""
SAM_DOCKER=""

cleanup() {
  if [ -n "$WATCH_PGID" ]; then
    kill -- "-$WATCH_PGID" 2>/dev/null || true
  fi
  .venv/bin/python infra/local/stack.py down >/dev/null 2>&1 || true
  if [ -n "$SAM_DOCKER" ]; then
    bash infra/local/sam-docker.sh down || true
  fi
}
trap cleanup EXIT INT TERM

# A build that runs out of disk fails far from the cause (a pip or linker error), so say
# it first, before anything is installed. A warning, not a stop: an existing target/ may
# need much less.
warn_if_low_disk() {
  local needed_gb=$1 free_kb
  free_kb=$(df -Pk "$ROOT" | awk 'NR == 2 { print $4 }')
  if [ "$free_kb" -lt $((needed_gb * 1024 * 1024)) ]; then
    echo "WARNING: only $((free_kb / 1024 / 1024)) GB free under $ROOT; a clean run needs about ${needed_gb} GB, and running out fails it with 'No space left on device' (cargo clean frees target/)" >&2
  fi
}

# A stage's heading, with the time since the script started.
stage() {
  echo "== $* [$((SECONDS / 60))m$((SECONDS % 60))s]"
}

install_toolchain() {
  bash infra/local/install.sh
}

# start_stack [--host ADDRESS]: moto on loopback, or where containers reach it.
start_stack() {
  .venv/bin/python infra/local/stack.py up "$@"
  set -a
  # shellcheck disable=SC1091
  . "$ROOT/.local/stack.env"
  set +a
}

free_port() {
  .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Docker and SAM's base image for `sam local` (infra/local/sam-docker.sh): sets DOCKER_HOST
# and GATEWAY, the docker bridge's address where the containers reach moto and the fakes.
# The daemon is stopped on exit if it was started here.
start_sam_docker() {
  SAM_DOCKER=1
  eval "$(bash infra/local/sam-docker.sh up)"
  export DOCKER_HOST
}

# Runs the functions under `cargo lambda watch` on a free port ($WATCH_PORT) with the local
# stack's environment (or the env file given), in its own process group so cleanup stops
# the functions too.
start_watch() {
  local env_file=${1:-$ROOT/.local/stack.env}
  WATCH_PORT=$(free_port)
  setsid cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$WATCH_PORT" \
    --env-file "$env_file" --ignore-changes >"$ROOT/.local/watch.log" 2>&1 &
  WATCH_PGID=$!
  for _ in $(seq 1 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$WATCH_PORT") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "cargo lambda watch did not start; see .local/watch.log" >&2
  return 1
}

# Loads the demo tenant with the ops CLI, its Chatwoot pointed at the chat's local fake on
# $CHATWOOT_PORT, and gives it local tokens (WhatsApp, Chatwoot, the desk webhook's).
# `load_demo_tenant --always-open` leaves its business hours and holidays out (the test
# command, and `run.sh --always-open`).
load_demo_tenant() {
  CHATWOOT_PORT=$(free_port)
  .venv/bin/python infra/local/local_tenant.py --chatwoot-port "$CHATWOOT_PORT" "$@"
  STACK_NAME=local target/debug/ops tenant put "$ROOT/.local/demo.yaml"
  STACK_NAME=local target/debug/ops tenant secret 106540352242922 --whatsapp-token local-token \
    --chatwoot-token local-chatwoot-token --desk-token local-desk-token-0123456789abcdefghij
}

# The local fakes of the Graph API, Chatwoot and Claude that chat.py starts (the black-box
# tests' own, in the blackbox crate).
build_local_fakes() {
  cargo build -p blackbox --bin local_fakes
}

# The environment of a local conversation: the stack's, with the Graph API pointed at the
# chat's local fake on $GRAPH_PORT and, without ANTHROPIC_API_KEY, Claude at the chat's
# labelled local fake ($AI_ARGS passes its port to chat.py).
write_chat_env() {
  GRAPH_PORT=$(free_port)
  AI_ARGS=()
  local ai_url=""
  if [ -z "${ANTHROPIC_API_KEY:-}" ]; then
    local ai_port
    ai_port=$(free_port)
    AI_ARGS=(--ai-port "$ai_port")
    ai_url="http://127.0.0.1:$ai_port"
  fi
  {
    grep -v -e '^GRAPH_API_BASE_URL=' -e '^ANTHROPIC_BASE_URL=' "$ROOT/.local/stack.env"
    echo "GRAPH_API_BASE_URL=http://127.0.0.1:$GRAPH_PORT"
    if [ -n "$ai_url" ]; then
      echo "ANTHROPIC_BASE_URL=$ai_url"
    else
      grep '^ANTHROPIC_BASE_URL=' "$ROOT/.local/stack.env"
    fi
  } >"$ROOT/.local/chat.env"
}
