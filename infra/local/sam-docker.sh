#!/usr/bin/env bash
# Prepares what `sam local invoke` and `sam local start-api` need on a machine with no image
# registry, idempotently:
#   - Debian's docker.io, debootstrap, qemu-user-static and binfmt-support, when missing;
#   - a Docker daemon: the one running, or one of our own (data under .local/docker), which
#     `stop` ends again (a daemon it did not start is never touched);
#   - arm64 emulation (binfmt qemu-aarch64), for the template's arm64 functions;
#   - the base image SAM builds its run image from, public.ecr.aws/lambda/provided:al2023-arm64,
#     made from a debootstrapped Debian root filesystem (cached in .local/sam-base).
#
#   bash infra/local/sam-docker.sh up      prepare; prints DOCKER_HOST=... and GATEWAY=...
#   bash infra/local/sam-docker.sh down    stop the daemon if this script started it
#
# Binaries from cargo-lambda (zig, glibc <= 2.30) run on Debian's glibc as on al2023's.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE="$ROOT/.local/docker"
BASE="$ROOT/.local/sam-base"
IMAGE=public.ecr.aws/lambda/provided:al2023-arm64
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

log() { echo "sam-docker: $*" >&2; }

install_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
  command -v update-binfmts >/dev/null || missing+=(binfmt-support)
  [ ${#missing[@]} -eq 0 ] && return
  log "installing ${missing[*]}"
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >"$ROOT/.local/apt.log" 2>&1; then
    as_root apt-get update -q >>"$ROOT/.local/apt.log" 2>&1
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >>"$ROOT/.local/apt.log" 2>&1 ||
      { tail -20 "$ROOT/.local/apt.log" >&2; exit 1; }
  fi
}

enable_arm64_emulation() {
  if [ "$(uname -m)" = aarch64 ]; then return; fi
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    as_root mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    as_root update-binfmts --enable qemu-aarch64
  fi
}

# The daemon already answering on the default socket, or ours under .local/docker.
start_daemon() {
  if docker --host unix:///var/run/docker.sock info >/dev/null 2>&1; then
    DOCKER_HOST=unix:///var/run/docker.sock
    return
  fi
  DOCKER_HOST="unix://$STATE/docker.sock"
  if docker --host "$DOCKER_HOST" info >/dev/null 2>&1; then
    return
  fi
  mkdir -p "$STATE/data" "$STATE/exec"
  log "starting dockerd (data in $STATE)"
  # No forwarding or masquerading: the containers talk only to the host, on the bridge's
  # gateway address. Published ports by iptables, not the userland proxy: the proxy accepts
  # before the emulated runtime listens, and SAM gives up after three quick tries.
  if ! as_root iptables -t nat -L -n >/dev/null 2>&1; then
    log "iptables (nat table) is not usable here; dockerd needs it to publish the functions' ports"
    exit 1
  fi
  as_root setsid dockerd --ip-forward=false --ip-masq=false --userland-proxy=false \
    --data-root "$STATE/data" --exec-root "$STATE/exec" --pidfile "$STATE/dockerd.pid" \
    --host "$DOCKER_HOST" >"$STATE/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 60); do
    if docker --host "$DOCKER_HOST" info >/dev/null 2>&1; then
      echo "$!" >"$STATE/started-by-us"
      return
    fi
    sleep 0.5
  done
  log "dockerd did not start; its log ends with:"
  tail -20 "$STATE/dockerd.log" >&2
  exit 1
}

build_base_image() {
  if docker --host "$DOCKER_HOST" image inspect "$IMAGE" >/dev/null 2>&1; then
    return
  fi
  mkdir -p "$BASE"
  if [ ! -s "$BASE/rootfs-arm64.tar" ]; then
    log "debootstrap of Debian $SUITE arm64 (about 2 to 3 minutes, once)"
    as_root rm -rf "$BASE/rootfs-arm64"
    as_root debootstrap --arch=arm64 --variant=minbase --include=ca-certificates "$SUITE" "$BASE/rootfs-arm64" "$MIRROR" \
      >"$BASE/debootstrap.log" 2>&1 || { tail -20 "$BASE/debootstrap.log" >&2; exit 1; }
    as_root tar -C "$BASE/rootfs-arm64" -cf "$BASE/rootfs-arm64.tar.partial" .
    mv "$BASE/rootfs-arm64.tar.partial" "$BASE/rootfs-arm64.tar"
    as_root rm -rf "$BASE/rootfs-arm64"
  fi
  # `docker import --platform` is ignored by this daemon; a build on scratch sets it.
  cat >"$BASE/Dockerfile" <<EOF
FROM scratch
ADD rootfs-arm64.tar /
ENV LANG=C.UTF-8 PATH=/usr/local/bin:/usr/bin:/bin LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime
WORKDIR /var/task
EOF
  log "building $IMAGE"
  docker --host "$DOCKER_HOST" build --quiet --platform linux/arm64 -t "$IMAGE" "$BASE" >/dev/null
}

# The bridge's gateway address. `network inspect` has answered without it (Docker 28, a
# daemon started a moment before); the address is then the one docker0 holds.
gateway() {
  local address
  address=$(docker --host "$DOCKER_HOST" network inspect bridge \
    --format '{{range .IPAM.Config}}{{.Gateway}}{{end}}')
  if [ -z "$address" ]; then
    address=$(ip -o -4 addr show dev docker0 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -1)
  fi
  if [ -z "$address" ]; then
    log "no address for the docker bridge (docker0): the containers could not reach the local stack"
    exit 1
  fi
  echo "$address"
}

up() {
  mkdir -p "$ROOT/.local"
  install_packages
  enable_arm64_emulation
  start_daemon
  build_base_image
  echo "DOCKER_HOST=$DOCKER_HOST"
  echo "GATEWAY=$(gateway)"
}

down() {
  [ -f "$STATE/started-by-us" ] || return 0
  local pid
  pid=$(cat "$STATE/dockerd.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    as_root kill "$pid"
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f "$STATE/started-by-us"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  *)
    sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
    exit 2
    ;;
esac
