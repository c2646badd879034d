"""docker-compose.yml and the managed node must run the same OpenSearch version."""

from __future__ import annotations

from indexing.opensearch.node import OPENSEARCH_VERSION
from tests.engines import compose_image


def test_compose_image_matches_managed_node_version():
    image = compose_image()
    name, _, tag = image.rpartition(":")
    assert name == "opensearchproject/opensearch"
    assert tag == OPENSEARCH_VERSION


def test_secure_variant_turns_security_on_and_keeps_the_password_out_of_the_file():
    import yaml

    from tests.engines import COMPOSE_FILE

    secure = yaml.safe_load(COMPOSE_FILE.with_name("docker-compose.secure.yml").read_text())
    service = secure["services"]["opensearch"]
    env = service["environment"]
    assert env["DISABLE_SECURITY_PLUGIN"] == "false"
    assert env["DISABLE_INSTALL_DEMO_CONFIG"] == "false"
    assert env["OPENSEARCH_INITIAL_ADMIN_PASSWORD"].startswith("${OPENSEARCH_INITIAL_ADMIN")
    assert "image" not in service  # the base file's pinned image applies
    assert "https://localhost:9200" in " ".join(service["healthcheck"]["test"])
