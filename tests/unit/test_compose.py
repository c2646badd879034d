"""docker-compose.yml and the managed node must run the same OpenSearch version."""

from __future__ import annotations

import yaml

from indexing.elasticsearch.node import ELASTICSEARCH_VERSION
from indexing.opensearch.node import OPENSEARCH_VERSION
from tests.engines import COMPOSE_FILE, compose_image


def test_compose_image_matches_managed_node_version():
    image = compose_image()
    name, _, tag = image.rpartition(":")
    assert name == "opensearchproject/opensearch"
    assert tag == OPENSEARCH_VERSION


def test_elasticsearch_service_matches_its_managed_node_and_stays_local():
    image = compose_image(service="elasticsearch")
    name, _, tag = image.rpartition(":")
    assert name == "docker.elastic.co/elasticsearch/elasticsearch"
    assert tag == ELASTICSEARCH_VERSION
    service = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["elasticsearch"]
    assert service["environment"]["xpack.security.enabled"] == "false"
    assert service["environment"]["discovery.type"] == "single-node"
    # security is off: bound to loopback only, and only when its profile is asked for
    assert all(port.startswith("127.0.0.1:") for port in service["ports"])
    assert service["profiles"] == ["elasticsearch"]


def test_secure_variant_turns_security_on_and_keeps_the_password_out_of_the_file():
    secure = yaml.safe_load(COMPOSE_FILE.with_name("docker-compose.secure.yml").read_text())
    service = secure["services"]["opensearch"]
    env = service["environment"]
    assert env["DISABLE_SECURITY_PLUGIN"] == "false"
    assert env["DISABLE_INSTALL_DEMO_CONFIG"] == "false"
    assert env["OPENSEARCH_INITIAL_ADMIN_PASSWORD"].startswith("${OPENSEARCH_INITIAL_ADMIN")
    assert "image" not in service  # the base file's pinned image applies
    assert "https://localhost:9200" in " ".join(service["healthcheck"]["test"])


def _services():
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def test_images_ports_and_limits_come_from_variables_with_production_defaults():
    from indexing.images.spec import SPECS

    for name, port in (
        ("opensearch", "SPARSE_MM_PORT:-9200"),
        ("elasticsearch", "SPARSE_MM_ES_PORT:-9201"),
    ):
        service = _services()[name]
        spec = SPECS[name]
        assert service["image"] == f"${{{spec.image_variable}:-{spec.official_image}}}"
        assert service["ports"] == [f"127.0.0.1:${{{port}}}:9200"]
        limits = service["ulimits"]
        assert limits["memlock"] == {
            "soft": "${SPARSE_MM_MEMLOCK:--1}",
            "hard": "${SPARSE_MM_MEMLOCK:--1}",
        }
        assert limits["nofile"]["hard"] == "${SPARSE_MM_NOFILE:-65536}"


def test_healthchecks_ask_cluster_health_which_every_image_answers():
    for service in _services().values():
        test = " ".join(service["healthcheck"]["test"])
        assert "curl" in test and "/_cluster/health" in test
