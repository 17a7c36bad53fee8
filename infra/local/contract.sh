#!/usr/bin/env bash
# The platform API's contract test (a stage of test.sh; runs alone too):
# the local stack with two tenants, a conversation, a platform key and each tenant's key, the
# real api binary under `cargo lambda watch`, and schemathesis against the OpenAPI document
# it serves (infra/local/contract.py says what is checked). Fails when a check fails or an
# operation never got a 2xx; prints the operation count and the time taken.
#
#   bash infra/local/contract.sh     CONTRACT_MAX_EXAMPLES=N (default 25) and CONTRACT_SEED=N
#                                    (default 13: the same cases every run) change the run
source "$(dirname "$0")/common.sh"

if [ -z "${CONTRACT_IN_TEST_SH:-}" ]; then
  install_toolchain
  unset ANTHROPIC_API_KEY
  # The api, the ops CLI, and what the chat runs (webhook, worker, desk, the local fakes).
  cargo build --workspace --bins --locked
fi
contract_started=$SECONDS

start_stack
mkdir -p "$ROOT/.local/contract"
# The first tenant: the demo tenant, always open, with its local secrets.
load_demo_tenant --always-open
write_chat_env
# Every request of the run is one caller's: the per-minute limits would turn the run into
# 429s (they have black-box tests of their own).
printf 'API_CALLS_PER_MINUTE=1000000\nAPI_FAILED_AUTH_PER_MINUTE=1000000\n' >>"$ROOT/.local/chat.env"
start_watch "$ROOT/.local/chat.env"

# A conversation of the first tenant (the customer greets; the bot answers with its menu),
# so the routes that read one have something to read.
printf 'oi\n' >"$ROOT/.local/contract/chat.txt"
.venv/bin/python infra/local/chat.py --port "$WATCH_PORT" --graph-port "$GRAPH_PORT" \
  --chatwoot-port "$CHATWOOT_PORT" "${AI_ARGS[@]}" --script "$ROOT/.local/contract/chat.txt" >/dev/null

# The second tenant, the provider's own tenant, keys and members, through the ops CLI; both
# tenants with campaigns enabled and an approved template; through the api, a supervisor per
# tenant and a campaign in the state each campaign operation needs.
.venv/bin/python infra/local/contract.py seed --out "$ROOT/.local/contract/seeds.json" \
  --base-url "http://127.0.0.1:$WATCH_PORT/lambda-url/api"

.venv/bin/python infra/local/contract.py run \
  --base-url "http://127.0.0.1:$WATCH_PORT/lambda-url/api" --seeds "$ROOT/.local/contract/seeds.json"
echo "contract stage: $((SECONDS - contract_started)) s with the local stack, the seeding and the chat"
