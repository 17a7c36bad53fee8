#!/usr/bin/env bash
# Installs the pinned local toolchain into ./.venv and the arm64 Rust target.
# Idempotent: a second run with everything in place only checks versions.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/.venv"

# Pinned: ziglang 0.16.0 breaks the arm64 build of aws-lc-sys; 0.17.1 with cargo-lambda 1.9.2 works.
pins=(
  "moto[server]==5.2.5"
  "cargo-lambda==1.9.2"
  "ziglang==0.17.1"
  "aws-sam-cli==1.170.0"
  "cfn-lint==1.58.0"
  "schemathesis==4.32.5"
)
stamp="$venv/.pins"
want=$(printf '%s\n' "${pins[@]}")

# A venv left half made (an install interrupted) is made again.
if [ ! -x "$venv/bin/python" ] || [ ! -x "$venv/bin/pip" ]; then
  python3 -m venv --clear "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
  printf '%s\n' "$want" > "$stamp"
fi

if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  rustup target add aarch64-unknown-linux-gnu
fi
echo "toolchain ready in $venv"
