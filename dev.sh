#!/usr/bin/env bash
# One-command entry points for a fresh machine:
#   ./dev.sh test [PYTEST ARGS]   set up, start or reuse an engine, run the test suite
#   ./dev.sh demo                 set up, start or reuse an engine, ingest the demo, query it
#   ./dev.sh setup                only create/update the virtual environment
# The virtual environment lives outside the clone ($SPARSE_MM_VENV, default
# ~/.cache/sparse-mm/venv) because PyPI's torch is a multi-GB download worth reusing.
# The engine: $OPENSEARCH_URL if set, else the managed local node (`sparse-mm opensearch start`),
# which is stopped again at the end if this script started it.
set -euo pipefail
cd "$(dirname "$0")"

VENV="${SPARSE_MM_VENV:-$HOME/.cache/sparse-mm/venv}"
PYTHON="${PYTHON:-python3}"

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

STARTED_NODE=0
engine_up() {
  if [ -n "${OPENSEARCH_URL:-}" ]; then
    echo "using OpenSearch at $OPENSEARCH_URL" >&2
    return
  fi
  local port="${SPARSE_MM_PORT:-9200}"
  if ! sparse-mm opensearch status --port "$port" >/dev/null 2>&1; then
    STARTED_NODE=1
  fi
  sparse-mm opensearch start --port "$port" >&2
  export OPENSEARCH_URL="http://127.0.0.1:$port"
}

engine_down() {
  if [ "$STARTED_NODE" = 1 ]; then
    sparse-mm opensearch stop --port "${SPARSE_MM_PORT:-9200}" >&2 || true
  fi
}

cmd="${1:-}"
shift || true
case "$cmd" in
  setup)
    setup
    ;;
  test)
    setup
    trap engine_down EXIT
    engine_up
    status=0
    python -m pytest "$@" || status=$?
    if [ "$status" = 5 ]; then
      echo "error: pytest collected no tests; that is a failure here, not a pass" >&2
      exit 1
    fi
    exit "$status"
    ;;
  demo)
    setup
    engine_up
    if ! sparse-mm --help | grep -q "^  ingest"; then
      echo "sparse-mm ingest and query are not built yet; the engine is up at $OPENSEARCH_URL" >&2
      exit 0
    fi
    sparse-mm ingest
    sparse-mm query "a dog on a beach"
    echo "the engine keeps running at $OPENSEARCH_URL; stop it with: sparse-mm opensearch stop" >&2
    ;;
  *)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
