#!/usr/bin/env bash
# The functions as Lambda runs them: each in its arm64 container (under qemu on x86_64),
# started by `sam local`, against the local stack (moto) and the local fakes of Graph and
# Claude, all on the docker bridge's gateway address. Prepares Docker and SAM's base image
# once (infra/local/sam-docker.sh; about 3 minutes the first time, cached in .local/), builds
# with `sam build` unless .aws-sam is newer than the sources, loads the always-open demo
# tenant, and stops what it started on exit.
#
#   bash infra/local/sam.sh              every sample event of events/ through
#                                        `sam local invoke`, then the HTTP ones through
#                                        `sam local start-api`, each with its verdict
#   bash infra/local/sam.sh start-api    serve the webhook and desk routes on
#                                        http://127.0.0.1:3000 until Ctrl-C (README: curl)
source "$(dirname "$0")/common.sh"

mode=${1:-events}
case $mode in
  events | start-api) ;;
  *)
    sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
    exit 2
    ;;
esac

install_toolchain
cargo build --locked -p ops -p blackbox --bin ops --bin local_fakes
newest_source=$(find Cargo.lock template.yaml shared functions -type f -newer .aws-sam/build/template.yaml 2>/dev/null | head -1 || true)
if [ ! -f .aws-sam/build/template.yaml ] || [ -n "$newest_source" ]; then
  CARGO_PROFILE_RELEASE_LTO=thin CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 sam build --beta-features
fi
start_sam_docker
start_stack --host "$GATEWAY"
load_demo_tenant --always-open

if [ "$mode" = events ]; then
  .venv/bin/python infra/local/invoke_events.py --sam --host "$GATEWAY" --show
  .venv/bin/python infra/local/invoke_events.py --start-api --host "$GATEWAY"
else
  .venv/bin/python - <<PY
import json, sys
sys.path.insert(0, "infra/local")
import stack
env = stack.read_env()
env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
(stack.STATE / "sam-env.json").write_text(json.dumps({"Parameters": env}, indent=1))
PY
  echo "webhook: POST http://127.0.0.1:3000/webhook (app secret local-app-secret);" \
    "queued envelopes: .venv/bin/python infra/local/stack.py queued"
  sam local start-api --port 3000 --skip-pull-image --env-vars .local/sam-env.json \
    --parameter-overrides "LocalEndpointUrl=$AWS_ENDPOINT_URL"
fi
