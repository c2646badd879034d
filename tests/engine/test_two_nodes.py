"""Two managed nodes on loopback form one cluster; with a replica per shard the index keeps
answering, with the same hits, while one node is down, and goes back to green when it returns."""

from __future__ import annotations

import pytest

from indexing.client import ConnectionOptions
from indexing.engine import connect_client as connect
from indexing.ingest import IngestOptions, ingest
from indexing.layout import IndexSettings
from indexing.search import SearchOptions, encode_query, search
from sparse_mm.checkpoint import load_model
from sparse_mm.demo import demo_model_dir
from sparse_mm.encoders import load_query_encoder
from tests.engine.local_nodes import local_nodes
from tools.crash import synthetic_source

pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.usefixtures("java")]

IMAGES = 5_000
QUERIES = ("a dog on a beach", "a red car in the city", "two people riding horses", "a cat")
INDEX = "two-nodes"


def _connect(node):
    return connect(ConnectionOptions(url=node.url, timeout=30.0, max_retries=0))


def _health(client, nodes: int, status: str, index: str | None = None) -> dict:
    """Cluster health (of `index` only, when given: the engine has system indices too)."""
    return client.cluster.health(
        index=index,
        wait_for_nodes=str(nodes),
        wait_for_status=status,
        timeout="120s",
        request_timeout=130,
    )


def _answers(client, model, encoder) -> list:
    """Top 10 of each query, hybrid (brute force, so no HNSW graph of a particular shard
    copy decides the candidates) and sparse: ids and scores."""
    out = []
    for text in QUERIES:
        vectors = encode_query(model, encoder, text)
        for options in (SearchOptions(exact=True), SearchOptions(mode="sparse")):
            options = SearchOptions(**{**options.__dict__, "explain": False})
            hits = search(client, INDEX, vectors, options, model.config.w1, model.config.w2).hits
            out.append([(h.id, round(h.score, 5)) for h in hits])
    return out


def test_queries_keep_answering_while_one_of_two_nodes_is_down(tmp_path):
    model = load_model(demo_model_dir())
    encoder = load_query_encoder(model)
    source = synthetic_source(tmp_path / "corpus", IMAGES)
    with local_nodes(2, cluster=True) as nodes:
        for node in nodes:
            node.start()
        client = _connect(nodes[0])
        assert _health(client, 2, "green")["number_of_nodes"] == 2
        options = IngestOptions(index=INDEX, settings=IndexSettings(shards=2, replicas=1))
        report = ingest(client, model, source, options, progress=False)
        assert report.bulk.indexed == IMAGES
        assert _health(client, 2, "green", INDEX)["active_shards"] == 4  # 2 primaries + 2 replicas
        before = _answers(client, model, encoder)
        assert all(len(hits) == 10 for hits in before)

        # Stop the node that is not the elected cluster manager: two manager-eligible nodes
        # cannot lose the manager and still elect one (a quorum needs three; see README).
        manager = client.transport.perform_request(
            "GET", "/_cat/cluster_manager", params={"format": "json"}
        )[0]["node"]
        stopped = next(n for n in nodes if n.name != manager)
        survivor = _connect(next(n for n in nodes if n.name == manager))
        assert "stopped" in stopped.stop()
        health = _health(survivor, 1, "yellow", INDEX)
        assert (health["number_of_nodes"], health["status"]) == (1, "yellow")
        assert health["active_primary_shards"] == 2  # the survivor's copies are primaries now
        assert health["unassigned_shards"] == 2  # the replicas wait for a second node
        assert survivor.count(index=INDEX)["count"] == IMAGES
        assert _answers(survivor, model, encoder) == before

        stopped.start()
        health = _health(survivor, 2, "green", INDEX)
        assert (health["number_of_nodes"], health["active_shards"]) == (2, 4)
        assert _health(survivor, 2, "green")["status"] == "green"  # the whole cluster
        assert _answers(_connect(stopped), model, encoder) == before
