"""A third engine is one adapter and one line in the registry (indexing/registry.py): registered,
the fake engine of tests/unit/fake_engine.py is offered by the CLI (--engine choices, its own
start|stop|status group), the engine choice (its URL and port variables) and the bench (its
--engine, its URL), with no other change."""

from __future__ import annotations

import socket

import pytest

from indexing import registry
from indexing.engine_choice import choose_engine
from tests.cli_run import one_line_error, run
from tests.unit import fake_engine
from tests.unit.fake_engine import NAME


@pytest.fixture
def third_engine(monkeypatch):
    monkeypatch.setitem(registry.ENGINES, NAME, fake_engine.TARGET)
    fake_engine.CONNECTED.clear()
    for variable in ("FAKESEARCH_URL", "SPARSE_MM_FAKE_PORT", "SPARSE_MM_PORT"):
        monkeypatch.delenv(variable, raising=False)
    return fake_engine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_cli_offers_a_registered_engine_and_its_node_group(third_engine, tmp_path):
    assert NAME in run("--help").stdout
    for command in ("ingest", "query"):
        assert NAME in run(command, "--help").stdout
    result = run(NAME, "--help")
    assert result.exit_code == 0 and "Run a FakeSearch node." in result.stdout
    assert {"start", "stop", "status"} <= set(result.stdout.split())
    assert "$SPARSE_MM_FAKE_PORT" in run(NAME, "start", "--help").stdout
    status = run(NAME, "status", "--home", tmp_path, "--port", 9299)
    assert status.exit_code == 1
    assert status.stdout.strip() == "FakeSearch (managed) is not running on port 9299"
    stop = run(NAME, "stop", "--home", tmp_path)
    assert stop.exit_code == 0 and "no FakeSearch node that this user started" in stop.stdout


def test_query_reaches_the_registered_engine_by_its_url_variable(third_engine, monkeypatch):
    url = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("FAKESEARCH_URL", url)
    monkeypatch.setenv("FAKESEARCH_USER", "fake-user")
    result = run("query", "a dog", "--engine", NAME)
    one_line_error(result, f"cannot reach FakeSearch at {url}")
    (options,) = third_engine.CONNECTED
    assert options.url == url and options.user == "fake-user"


def test_the_engine_choice_uses_its_variables(third_engine):
    env = {"SPARSE_MM_FAKE_PORT": "9333"}
    choice = choose_engine(env, lambda _u: False, lambda: False, NAME)
    assert (choice.kind, choice.url) == ("managed", "http://127.0.0.1:9333")
    # without its own port variable it follows $SPARSE_MM_PORT by its offset (9207 - 9200)
    choice = choose_engine({"SPARSE_MM_PORT": "9400"}, lambda _u: False, lambda: False, NAME)
    assert choice.url == "http://127.0.0.1:9407"
    url = "http://10.0.0.9:9200"
    choice = choose_engine({"FAKESEARCH_URL": url}, lambda u: u == url, lambda: False, NAME)
    assert (choice.kind, choice.url, choice.reason) == ("url", url, "FAKESEARCH_URL is set")


def test_the_bench_offers_it_and_sends_it_its_url(third_engine):
    from bench.suite import engine_names

    assert NAME in run("bench", "--help").stdout
    assert NAME in engine_names("both") and engine_names(NAME) == (NAME,)
    url = f"http://127.0.0.1:{_free_port()}"
    result = run("bench", "--engine", NAME, "--url", url, "--no-grid", "--queries", "10")
    one_line_error(result, f"cannot reach FakeSearch at {url}")
    assert [o.url for o in third_engine.CONNECTED] == [url]


def test_the_variables_table_in_the_docs_is_the_registrys():
    from pathlib import Path

    page = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    table = registry.variables_table()
    assert table in page.read_text(encoding="utf-8")
    assert "`ELASTICSEARCH_USER`" in table and "`OPENSEARCH_USER`" in table


def test_a_registered_engine_gets_a_column_of_the_variables_table(third_engine):
    table = registry.variables_table()
    assert table.splitlines()[0].endswith("| OpenSearch | Elasticsearch | FakeSearch |")
    assert "`SPARSE_MM_FAKE_PORT`, else `SPARSE_MM_PORT` + 7, else 9207" in table


def test_the_test_container_is_the_registered_engines_own(third_engine):
    from tests.containers import container_settings

    spec = registry.engine_spec(NAME)
    image, env = container_settings(NAME, {spec.image_variable: "fake/image:1"})
    assert (image, env) == ("fake/image:1", dict(spec.container_env))
    assert container_settings(NAME, {}) == (None, dict(spec.container_env))  # no image recipe
