"""docker-compose.yml and the managed node must run the same OpenSearch version."""

from __future__ import annotations

from indexing.node import OPENSEARCH_VERSION
from tests.engines import compose_image


def test_compose_image_matches_managed_node_version():
    image = compose_image()
    name, _, tag = image.rpartition(":")
    assert name == "opensearchproject/opensearch"
    assert tag == OPENSEARCH_VERSION
