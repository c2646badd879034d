#!/usr/bin/env bash
# One-command entry points for a fresh machine:
#   ./dev.sh test [PYTEST ARGS]   set up, start or reuse an engine, run the test suite
#   ./dev.sh demo                 set up, start or reuse an engine, ingest the demo, query it
#   ./dev.sh setup                only create/update the virtual environment
# The virtual environment lives outside the clone ($SPARSE_MM_VENV, default
# ~/.cache/sparse-mm/venv) because PyPI's torch is a multi-GB download worth reusing.
# The engine, for both: $SPARSE_MM_ENGINE=url|docker|managed, or unset for the first that works of
# $OPENSEARCH_URL, an engine already answering on 127.0.0.1:$SPARSE_MM_PORT (default 9200), Docker,
# the managed node (indexing/engine_choice.py). `test` lets the test session start its engine
# (testcontainers or the managed node, stopped at the end); `demo` leaves its engine running.
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

engine_up() {
  local choice kind url reason
  choice="$(python -m indexing.engine_choice)" || exit 2
  IFS=$'\t' read -r kind url reason <<<"$choice"
  case "$kind" in
    url) echo "using OpenSearch at $url ($reason)" >&2 ;;
    docker)
      local image
      image="$(python -c 'import os; from indexing.images.spec import OPENSEARCH as s; print(s.image(os.environ))')"
      echo "starting OpenSearch ($image) with docker compose ($reason)" >&2
      # the ulimits this daemon can grant (the production ones wherever it can)
      eval "$(scripts/docker-host.sh limits "$image")"
      docker compose up -d --wait >&2
      url="http://127.0.0.1:${SPARSE_MM_PORT:-9200}"
      ;;
    managed)
      echo "using the managed OpenSearch node ($reason)" >&2
      sparse-mm opensearch start --port "${url##*:}" >&2
      ;;
  esac
  export OPENSEARCH_URL="$url" ENGINE_KIND="$kind"
}

cmd="${1:-}"
shift || true
case "$cmd" in
  setup)
    setup
    ;;
  test)
    setup
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
    sparse-mm ingest
    sparse-mm query "a dog on a beach"
    case "$ENGINE_KIND" in
      managed) stop="sparse-mm opensearch stop" ;;
      docker) stop="docker compose down" ;;
      *) stop="" ;;
    esac
    echo "the engine keeps running at $OPENSEARCH_URL${stop:+; stop it with: $stop}" >&2
    ;;
  *)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
