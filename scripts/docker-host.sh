#!/usr/bin/env bash
# A Docker engine on this machine, for the container paths (compose, testcontainers, CI's
# containers stage), on a Debian/Ubuntu host without a container registry:
#   scripts/docker-host.sh install   dockerd (docker.io), debootstrap, and Docker Compose v2 as a
#                                    docker CLI plugin (idempotent: skips what is there)
#   scripts/docker-host.sh start     start dockerd in the background unless one answers already
#                                    (log: $SPARSE_MM_DOCKERD_LOG, default /var/log/sparse-mm-dockerd.log)
#   scripts/docker-host.sh stop      stop the dockerd that `start` started (never another one)
#   scripts/docker-host.sh limits IMAGE
#                                    print `export SPARSE_MM_MEMLOCK=... SPARSE_MM_NOFILE=...` for
#                                    docker-compose.yml when the daemon cannot grant the engines'
#                                    production ulimits (tried with IMAGE); nothing when it can:
#                                    eval "$(scripts/docker-host.sh limits IMAGE)"
# Debian ships only docker-compose v1, which rejects this project's compose files and has no
# --wait: Compose v2 is built from its Go module at a pinned version (the Go toolchain and its
# module proxy are enough), once, into $SPARSE_MM_COMPOSE_CACHE (default
# ~/.cache/sparse-mm/compose, outside the clone), and linked into ~/.docker/cli-plugins.
# Needs root (apt-get, dockerd).
set -euo pipefail

COMPOSE_MODULE="github.com/docker/compose/v2"
COMPOSE_VERSION="v2.40.3"
CACHE="${SPARSE_MM_COMPOSE_CACHE:-$HOME/.cache/sparse-mm/compose}"
PIDFILE="${SPARSE_MM_DOCKERD_PIDFILE:-/run/sparse-mm-dockerd.pid}"
LOG="${SPARSE_MM_DOCKERD_LOG:-/var/log/sparse-mm-dockerd.log}"
PLUGINS="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"

say() { echo "docker-host: $*" >&2; }
die() { echo "error: $*" >&2; exit 2; }
need_root() { [ "$(id -u)" = 0 ] || die "$1 needs root (apt-get and dockerd do)"; }

daemon_answers() { command -v docker >/dev/null && docker info >/dev/null 2>&1; }

compose_v2() { docker compose version --short 2>/dev/null | grep -q '^v\?[2-9]\.'; }

install_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  if [ "${#missing[@]}" = 0 ]; then
    say "dockerd and debootstrap are installed"
    return
  fi
  need_root install
  say "installing ${missing[*]} (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_compose() {
  if compose_v2; then
    say "docker compose $(docker compose version --short) is installed"
    return
  fi
  local bin="$CACHE/$COMPOSE_VERSION/docker-compose"
  if [ ! -x "$bin" ]; then
    command -v go >/dev/null || die "Compose v2 is built from its Go module: install Go 1.24+ first"
    say "building Docker Compose $COMPOSE_VERSION from its Go module into $CACHE (once; minutes)"
    # `go install pkg@version` refuses a module whose go.mod has exclude directives (Compose's
    # has): download the module, then build it as the main module.
    local src
    src="$(go mod download -json "$COMPOSE_MODULE@$COMPOSE_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
    [ -d "$src" ] || die "go mod download $COMPOSE_MODULE@$COMPOSE_VERSION gave no source folder"
    mkdir -p "$(dirname "$bin")"
    (cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$bin.partial" \
      -ldflags "-s -w -X $COMPOSE_MODULE/internal.Version=$COMPOSE_VERSION" ./cmd)
    mv "$bin.partial" "$bin"
  fi
  mkdir -p "$PLUGINS"
  ln -sf "$bin" "$PLUGINS/docker-compose"
  compose_v2 || die "$PLUGINS/docker-compose does not answer as Compose v2"
  say "docker compose $(docker compose version --short) installed in $PLUGINS"
}

start_daemon() {
  if daemon_answers; then
    say "a Docker daemon already answers ($(docker info --format '{{.ServerVersion}}'))"
    return
  fi
  need_root start
  command -v dockerd >/dev/null || die "no dockerd: run scripts/docker-host.sh install first"
  say "starting dockerd (log $LOG)"
  dockerd >>"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 60); do
    if daemon_answers; then
      say "dockerd $(docker info --format '{{.ServerVersion}}') answers"
      return
    fi
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || die "dockerd exited: $(tail -n 1 "$LOG")"
    sleep 1
  done
  die "dockerd does not answer after 60 s: see $LOG"
}

stop_daemon() {
  [ -f "$PIDFILE" ] || { say "no dockerd started by this script"; return; }
  local pid
  pid="$(cat "$PIDFILE")"
  if kill -0 "$pid" 2>/dev/null; then
    say "stopping dockerd (pid $pid)"
    kill "$pid"
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  fi
  rm -f "$PIDFILE"
}

# The production values docker-compose.yml asks for: memlock unlimited, nofile 65536. A daemon
# without CAP_SYS_RESOURCE (root in some VMs) cannot give a container more than its own hard
# limits, and refuses to start it ("error setting rlimit ... operation not permitted"). Try
# them with a container that only runs `true`; when refused, print this shell's hard limits
# (the daemon's own, when it was started from here: scripts/docker-host.sh start).
print_limits() {
  local image="${1:?usage: scripts/docker-host.sh limits IMAGE}" memlock nofile out=()
  if docker run --rm --entrypoint true --ulimit memlock=-1:-1 --ulimit nofile=65536:65536 \
    "$image" >/dev/null 2>&1; then
    return
  fi
  docker run --rm --entrypoint true "$image" >/dev/null 2>&1 \
    || die "a container of $image does not start even without ulimits"
  memlock="$(ulimit -Hl)"
  nofile="$(ulimit -Hn)"
  [ "$memlock" = unlimited ] || out+=("SPARSE_MM_MEMLOCK=$((memlock * 1024))")
  [ "$nofile" = unlimited ] || [ "$nofile" -ge 65536 ] || out+=("SPARSE_MM_NOFILE=$nofile")
  say "this daemon cannot grant the production ulimits: ${out[*]}"
  echo "export ${out[*]}"
}

case "${1:-}" in
  install) install_packages; install_compose ;;
  start) start_daemon ;;
  stop) stop_daemon ;;
  limits) print_limits "${2:-}" ;;
  *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
