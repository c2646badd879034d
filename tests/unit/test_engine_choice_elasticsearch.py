"""Elasticsearch is chosen the same way as OpenSearch (indexing/engine_choice.py), from its own
URL variable and port, and its Docker path gets the compose file's image."""

from __future__ import annotations

import pytest

from indexing.engine_choice import choose_engine, port_from
from sparse_mm.errors import EngineError
from tests.containers import container_settings
from tests.engines import compose_image, managed_node


def decide(env, answering=(), docker=False):
    return choose_engine(env, lambda url: url in answering, lambda: docker, "elasticsearch")


def test_its_port_follows_the_opensearch_port_unless_given():
    assert port_from({}, "elasticsearch") == 9201
    assert port_from({"SPARSE_MM_PORT": "9220"}, "elasticsearch") == 9221
    assert (
        port_from({"SPARSE_MM_PORT": "9220", "SPARSE_MM_ES_PORT": "9400"}, "elasticsearch") == 9400
    )
    with pytest.raises(EngineError, match="SPARSE_MM_ES_PORT='x' is not a port number"):
        port_from({"SPARSE_MM_ES_PORT": "x"}, "elasticsearch")


def test_auto_reuses_a_node_on_its_port_then_docker_then_the_managed_node():
    env = {"SPARSE_MM_PORT": "9220"}
    # an OpenSearch answering on 9220 is not an Elasticsearch
    choice = decide(env, answering={"http://127.0.0.1:9220"}, docker=False)
    assert (choice.kind, choice.url) == ("managed", "http://127.0.0.1:9221")
    choice = decide(env, answering={"http://127.0.0.1:9221"}, docker=True)
    assert (choice.kind, choice.url) == ("url", "http://127.0.0.1:9221")
    assert decide(env, docker=True).kind == "docker"


def test_its_url_variable_is_honoured_or_fails_and_opensearch_url_is_not_used():
    url = "http://10.0.0.6:9200"
    choice = decide({"ELASTICSEARCH_URL": url}, answering={url})
    assert (choice.kind, choice.url) == ("url", url)
    assert "ELASTICSEARCH_URL is set" in choice.describe()
    with pytest.raises(EngineError, match=r"ELASTICSEARCH_URL=.* does not answer"):
        decide({"ELASTICSEARCH_URL": url}, docker=True)
    choice = decide({"OPENSEARCH_URL": url}, answering={url})
    assert choice.kind == "managed"
    with pytest.raises(EngineError, match="SPARSE_MM_ENGINE=url needs ELASTICSEARCH_URL"):
        decide({"SPARSE_MM_ENGINE": "url", "OPENSEARCH_URL": url}, answering={url})


def test_explicit_choices_apply_to_it_as_to_opensearch():
    with pytest.raises(EngineError, match="no Docker daemon answers"):
        decide({"SPARSE_MM_ENGINE": "docker"}, docker=False)
    assert decide({"SPARSE_MM_ENGINE": "docker"}, docker=True).kind == "docker"
    choice = decide({"SPARSE_MM_ENGINE": "managed"}, answering={"http://127.0.0.1:9201"})
    assert (choice.kind, choice.url) == ("managed", "http://127.0.0.1:9201")


def test_docker_and_managed_paths_build_the_elasticsearch_ones():
    image, env = container_settings("elasticsearch", {})
    assert image == compose_image(service="elasticsearch") != compose_image()
    assert env["ES_JAVA_OPTS"] == "-Xms1g -Xmx1g"
    assert container_settings("opensearch", {})[0] == compose_image()
    local = {"SPARSE_MM_ELASTICSEARCH_IMAGE": "sparse-mm/elasticsearch:9.5.3"}
    assert container_settings("elasticsearch", local)[0] == "sparse-mm/elasticsearch:9.5.3"
    assert container_settings("opensearch", local)[0] == compose_image()
    node = managed_node("elasticsearch", 9221)
    assert (node.label, node.port, node.url) == ("Elasticsearch", 9221, "http://127.0.0.1:9221")
    assert managed_node("opensearch", 9220).label == "OpenSearch"
