#!/usr/bin/env bash
# One-command entry points for a fresh machine (./dev.sh with no command prints this).
set -euo pipefail

VENV="${SPARSE_MM_VENV:-$HOME/.cache/sparse-mm/venv}"
PYTHON="${PYTHON:-python3}"
WAY_OUT="to use the managed node instead (no Docker needed): SPARSE_MM_ENGINE=managed ./dev.sh demo"

usage() {
  cat <<'EOF'
usage: ./dev.sh setup|test|demo
  ./dev.sh setup                create or update the virtual environment, nothing else.
  ./dev.sh test [PYTEST ARGS]   set up, then run the test suite (the session starts, or reuses,
                                its engines and stops those it started).
  ./dev.sh demo                 set up, start or reuse an engine, ingest the demo corpus into a
                                new index behind the alias sparse-mm and query it; the engine
                                keeps running afterwards.
The virtual environment lives outside the clone ($SPARSE_MM_VENV, default
~/.cache/sparse-mm/venv), because PyPI's torch is a multi-GB download worth reusing.
The engine: $SPARSE_MM_ENGINE=url|docker|managed, or unset for the first that works of
$OPENSEARCH_URL, an engine already answering on 127.0.0.1:$SPARSE_MM_PORT (default 9200),
Docker with `docker compose` v2, and the managed node (indexing/engine_choice.py).
EOF
}

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
      || { echo "error: sparse-mm needs Python 3.10+ (set PYTHON=...)" >&2; exit 2; }
    echo "creating virtual environment in $VENV" >&2
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
  fi
  # Reinstall only when the dependency list changed.
  local stamp="$VENV/.sparse-mm-$(sha256sum pyproject.toml | cut -c1-16)-$(pwd | sha256sum | cut -c1-8)"
  if [ ! -f "$stamp" ]; then
    echo "installing sparse-mm with its test and dev extras into $VENV" >&2
    "$VENV/bin/pip" install -q -e ".[dev]"
    rm -f "$VENV"/.sparse-mm-*
    touch "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

# The compose file's image is there, or can be pulled.
compose_image_ready() {
  local image
  image="$(docker compose config --images opensearch 2>/dev/null | head -n 1)" || return 1
  [ -n "$image" ] || return 1
  docker image inspect "$image" >/dev/null 2>&1 && return 0
  echo "pulling $image" >&2
  docker compose pull opensearch >&2
}

start_managed() {
  echo "using the managed OpenSearch node ($1)" >&2
  sparse-mm opensearch start --port "$port" >&2
  kind=managed
}

# Choose and start OpenSearch; exports OPENSEARCH_URL and ENGINE_KIND, sets $port.
engine_up() {
  local choice kind url reason
  choice="$(python -m indexing.engine_choice)" || { echo "$WAY_OUT" >&2; exit 2; }
  # One field a line: an empty field stays a field (IFS=$'\t' read would merge the tabs).
  { read -r kind; read -r url; read -r reason; } <<<"$choice"
  port="${url##*:}"
  case "$kind" in
    url) echo "using OpenSearch at $url ($reason)" >&2 ;;
    docker)
      if ! compose_image_ready; then
        if [ "${SPARSE_MM_ENGINE:-}" = docker ]; then
          echo "error: SPARSE_MM_ENGINE=docker but the OpenSearch image is not there and cannot be pulled" >&2
          echo "$WAY_OUT" >&2
          exit 2
        fi
        start_managed "the compose file's image is not there and cannot be pulled"
      else
        echo "starting OpenSearch on port $port with docker compose ($reason)" >&2
        # the ulimits this daemon can grant (the production ones wherever it can)
        eval "$(scripts/docker-host.sh limits "$(docker compose config --images opensearch | head -n 1)")"
        SPARSE_MM_PORT="$port" docker compose up -d --wait opensearch >&2 \
          || { echo "error: docker compose could not start OpenSearch" >&2; echo "$WAY_OUT" >&2; exit 1; }
      fi
      ;;
    managed) start_managed "$reason" ;;
  esac
  export OPENSEARCH_URL="$url" ENGINE_KIND="$kind"
}

demo() {
  setup
  engine_up
  trap 'echo "the demo failed; $WAY_OUT" >&2' ERR
  # A new index behind the alias `sparse-mm`, verified, then swapped in: the demo works on any
  # engine whatever an earlier sparse-mm left there (an index of that name built by another
  # model or version is replaced; the previous demo index is kept for one more run).
  sparse-mm ingest --alias sparse-mm
  sparse-mm query "a dog on a beach"
  trap - ERR
  local stop="$VENV/bin/sparse-mm opensearch stop --port $port"
  [ "$ENGINE_KIND" = docker ] && stop="docker compose down"
  {
    echo "the engine keeps running at $OPENSEARCH_URL; to use it from this shell:"
    echo "  source $VENV/bin/activate   # or run $VENV/bin/sparse-mm"
    echo "  export OPENSEARCH_URL=$OPENSEARCH_URL"
    [ "$ENGINE_KIND" = url ] || echo "stop it with: $stop"
  } >&2
}

main() {
  cd "$(dirname "${BASH_SOURCE[0]}")"
  local cmd="${1:-}"
  shift || true
  case "$cmd" in
    setup) setup ;;
    test)
      setup
      local status=0
      python -m pytest "$@" || status=$?
      if [ "$status" = 5 ]; then
        echo "error: pytest collected no tests; that is a failure here, not a pass" >&2
        exit 1
      fi
      exit "$status"
      ;;
    demo) demo ;;
    *)
      usage
      exit 2
      ;;
  esac
}

# Sourced (by tests/unit/test_dev_sh.py), it only defines the functions.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
