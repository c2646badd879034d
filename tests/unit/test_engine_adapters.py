"""The adapter registry (indexing/engine.py): each engine's adapter from its name or from a bare
client of its library, the same interface for both, and a clear error for anything else."""

from __future__ import annotations

import pytest
from elasticsearch import Elasticsearch
from opensearchpy import OpenSearch

from indexing.engine import ENGINES, Engine, as_engine, engine_class
from sparse_mm.errors import ConfigError


def test_every_registered_engine_implements_the_whole_interface():
    for name in ENGINES:
        cls = engine_class(name)
        assert issubclass(cls, Engine) and cls.name == name
        assert not getattr(cls, "__abstractmethods__", None), cls.__abstractmethods__


@pytest.mark.parametrize(
    ("client", "name"),
    [(OpenSearch(hosts=["http://127.0.0.1:9"]), "opensearch"),
     (Elasticsearch("http://127.0.0.1:9"), "elasticsearch")],
)  # fmt: skip
def test_a_bare_client_is_wrapped_in_its_engines_adapter(client, name):
    engine = as_engine(client)
    assert engine.name == name and engine.client is client
    assert engine.address() == "127.0.0.1:9"


def test_unknown_engines_and_clients_are_one_error():
    with pytest.raises(ConfigError, match="unknown engine 'solr'; expected one of opensearch"):
        engine_class("solr")
    with pytest.raises(ConfigError, match="no engine adapter for a dict client"):
        as_engine({})


def test_error_reason_is_the_first_root_cause_of_either_engines_error_body():
    from indexing.engine import error_reason

    body = {
        "error": {
            "root_cause": [{"type": "mapper_parsing_exception", "reason": "bad field"}],
            "type": "search_phase_execution_exception",
        },
        "status": 400,
    }
    assert error_reason(body, "fallback") == "mapper_parsing_exception: bad field"
    assert error_reason({"error": {"type": "x_exception"}}, "fb") == "x_exception: fb"
    assert error_reason({"error": "resource_already_exists_exception"}, "fb") == "fb"
    assert error_reason(None, "connection lost") == "connection lost"
