"""The URL rule against a real engine (indexing/registry.py): without --url a command asks the
chosen engine's URL variable, else its port variable, and says on stderr which URL it used;
the other engines' variables are not read. On each engine."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from indexing.registry import engine_spec, specs
from tests.cli_run import run
from tests.engines import each_engine  # noqa: F401  (every test here runs on both engines)


def _environment(engine, **own: str) -> dict[str, str | None]:
    """`own` for the chosen engine's variables; every other URL and port variable cleared or
    pointed at nothing, so that only the chosen engine's can explain a right answer."""
    env: dict[str, str | None] = {}
    for spec in specs():
        env[spec.url_variable] = None if spec.name == engine.name else "http://127.0.0.1:9"
        env[spec.port_variable] = None
    return {**env, **own}


def _query(engine, trained_model, index, env):
    result = run("query", "a dog on the beach", "--engine", engine.name, "--index", index,
                 "--model", trained_model.path, "--json", env=env)  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr.strip().splitlines()


def test_the_url_variable_then_the_port_variable(engine, cli_index, trained_model):
    index, _ = cli_index
    spec = engine_spec(engine.name)
    env = _environment(engine, **{spec.url_variable: engine.url})
    hits, stderr = _query(engine, trained_model, index, env)
    assert hits["hits"]
    assert f"{spec.label} at {engine.url} (${spec.url_variable}; --url to choose)" in stderr
    parts = urlsplit(engine.url)
    if parts.hostname == "127.0.0.1":  # a managed node, or one found on its port
        env = _environment(engine, **{spec.port_variable: str(parts.port)})
        by_port, stderr = _query(engine, trained_model, index, env)
        assert by_port["hits"] == hits["hits"]
        source = f"${spec.port_variable}={parts.port}"
        assert f"{spec.label} at {engine.url} ({source}; --url to choose)" in stderr
