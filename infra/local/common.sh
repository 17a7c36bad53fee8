# Shared by run.sh and test.sh: install the pinned toolchain, start and stop the local stack
# and `cargo lambda watch`, and clean up whatever was started, however the script ends.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
WATCH_PGID=""

cleanup() {
  if [ -n "$WATCH_PGID" ]; then
    kill -- "-$WATCH_PGID" 2>/dev/null || true
  fi
  .venv/bin/python infra/local/stack.py down >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

install_toolchain() {
  bash infra/local/install.sh
}

start_stack() {
  .venv/bin/python infra/local/stack.py up
  set -a
  # shellcheck disable=SC1091
  . "$ROOT/.local/stack.env"
  set +a
}

free_port() {
  .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs the functions under `cargo lambda watch` on a free port ($WATCH_PORT) with the local
# stack's environment, in its own process group so cleanup stops the functions too.
start_watch() {
  WATCH_PORT=$(free_port)
  setsid cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$WATCH_PORT" \
    --env-file "$ROOT/.local/stack.env" --ignore-changes >"$ROOT/.local/watch.log" 2>&1 &
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
