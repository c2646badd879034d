"""One URL rule for every engine command (indexing/registry.py): --url, else the engine's URL
variable, else its port variable, else its default port; credentials and the CA bundle from
the chosen engine's own variables; bench's --url is the chosen engine's."""

from __future__ import annotations

import socket

import pytest

from indexing.registry import engine_url, port_from, url_source
from tests.cli_run import one_line_error, run

_VARIABLES = (
    "OPENSEARCH_URL", "ELASTICSEARCH_URL", "SPARSE_MM_PORT", "SPARSE_MM_ES_PORT",
    "OPENSEARCH_USER", "OPENSEARCH_PASSWORD", "OPENSEARCH_CA_CERTS",
    "ELASTICSEARCH_USER", "ELASTICSEARCH_PASSWORD", "ELASTICSEARCH_CA_CERTS",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for variable in _VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_rule_in_order():
    env = {"SPARSE_MM_PORT": "9310", "OPENSEARCH_URL": "http://h:1"}
    assert engine_url("http://given:2", env) == "http://given:2"
    assert url_source(env) == ("http://h:1", "$OPENSEARCH_URL")
    assert url_source({"SPARSE_MM_PORT": "9310"}) == (
        "http://127.0.0.1:9310", "$SPARSE_MM_PORT=9310"
    )  # fmt: skip
    assert engine_url(None, {}) == "http://127.0.0.1:9200"
    assert engine_url(None, {}, "elasticsearch") == "http://127.0.0.1:9201"
    # Elasticsearch: its own variables, never OpenSearch's URL; its port follows SPARSE_MM_PORT
    assert engine_url(None, env, "elasticsearch") == "http://127.0.0.1:9311"
    assert engine_url(None, {**env, "SPARSE_MM_ES_PORT": "9400"}, "elasticsearch") == (
        "http://127.0.0.1:9400"
    )
    assert port_from({"SPARSE_MM_ES_PORT": "9400"}, "elasticsearch") == 9400


@pytest.mark.parametrize(
    ("engine", "variable", "label"),
    [("opensearch", "SPARSE_MM_PORT", "OpenSearch"),
     ("elasticsearch", "SPARSE_MM_ES_PORT", "Elasticsearch")],
)  # fmt: skip
def test_query_without_url_asks_the_port_variables_engine(monkeypatch, engine, variable, label):
    port = _free_port()
    monkeypatch.setenv(variable, str(port))
    result = run("query", "a dog on a beach", "--engine", engine)
    one_line_error(result, f"cannot reach {label} at http://127.0.0.1:{port}")


def test_elasticsearch_reads_its_own_credentials_and_ca(monkeypatch, tmp_path):
    from indexing.elasticsearch import client as es_client

    seen = []

    def connect(options, *, check=True):
        seen.append(options)
        raise es_client.EngineError("stop here")

    monkeypatch.setattr(es_client, "connect", connect)
    ca = tmp_path / "es-ca.pem"
    monkeypatch.setenv("OPENSEARCH_USER", "os-user")
    monkeypatch.setenv("OPENSEARCH_PASSWORD", "os-secret")
    monkeypatch.setenv("OPENSEARCH_CA_CERTS", str(tmp_path / "os-ca.pem"))
    args = ("query", "a dog", "--engine", "elasticsearch", "--url", "https://127.0.0.1:1")
    run(*args)
    assert (seen[-1].user, seen[-1].password, seen[-1].ca_certs) == (None, None, None)
    monkeypatch.setenv("ELASTICSEARCH_USER", "es-user")
    monkeypatch.setenv("ELASTICSEARCH_PASSWORD", "es-secret")
    monkeypatch.setenv("ELASTICSEARCH_CA_CERTS", str(ca))
    run(*args)
    found = (seen[-1].user, seen[-1].password, seen[-1].ca_certs)
    assert found == ("es-user", "es-secret", str(ca))


def test_bench_url_is_the_chosen_engines(monkeypatch):
    port = _free_port()
    result = run("bench", "--engine", "elasticsearch", "--url", f"http://127.0.0.1:{port}")
    one_line_error(result, f"cannot reach Elasticsearch at http://127.0.0.1:{port}")
    result = run("bench", "--engine", "opensearch", "--elasticsearch-url", "http://x:1")
    one_line_error(result, "--elasticsearch-url is for --engine both", code=2)
    monkeypatch.setenv("SPARSE_MM_ES_PORT", str(port))
    result = run("bench", "--engine", "elasticsearch")
    one_line_error(result, f"cannot reach Elasticsearch at http://127.0.0.1:{port}")
