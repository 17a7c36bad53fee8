#!/usr/bin/env bash
# Fuzzing: each target of fuzz/ in turn (one at a time, at the lowest priority) for a given
# time, from the corpus kept in fuzz/corpus/<target>/. Installs the nightly toolchain and
# cargo-fuzz when missing. New inputs land in the corpus: `--cmin` minimises it afterwards
# (commit the result). A crash stops the run with its input in fuzz/artifacts/<target>/:
# fix the code, add the input to the corpus, and the plain tests replay it on stable.
#
#   infra/local/fuzz.sh [--cmin] [seconds per target, default 600] [target ...]
source "$(dirname "$0")/common.sh"

CMIN=0
if [ "${1:-}" = "--cmin" ]; then
  CMIN=1
  shift
fi
SECONDS_PER_TARGET=${1:-600}
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  TARGETS=(webhook_split envelope_read chatwoot_desk_event tenant_yaml)
fi

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# Instrumented builds stay apart from the stable target/.
export CARGO_TARGET_DIR="$ROOT/target-fuzz"

cd fuzz
stage "build the fuzz targets"
nice -n 19 cargo +nightly fuzz build
for target in "${TARGETS[@]}"; do
  stage "$target for ${SECONDS_PER_TARGET}s"
  nice -n 19 cargo +nightly fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 2>&1 |
    tee "$ROOT/target-fuzz/$target.log" | grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+==|SUMMARY|Done)' || true
  if grep -q 'Test unit written to' "$ROOT/target-fuzz/$target.log"; then
    echo "$target: crash, see $ROOT/target-fuzz/$target.log and fuzz/artifacts/$target/" >&2
    exit 1
  fi
  if [ "$CMIN" = 1 ]; then
    stage "$target: minimise the corpus"
    # On coverage edges only: far fewer files than with hit counts, for the same coverage.
    nice -n 19 cargo +nightly fuzz cmin "$target" "corpus/$target" -- -use_counters=0 >/dev/null 2>&1
    # The inputs that once crashed stay, whatever coverage they add.
    git checkout -- "corpus/$target/crash-*" 2>/dev/null || true
    echo "$(ls "corpus/$target" | wc -l) inputs, $(du -sh --apparent-size "corpus/$target" | cut -f1)"
  fi
done
stage "fuzzing done"
