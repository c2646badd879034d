"""What an engine's image needs that differs by engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from indexing.elasticsearch.node import ELASTICSEARCH_VERSION
from indexing.elasticsearch.node import MIN_JAVA as ELASTICSEARCH_JAVA
from indexing.opensearch.node import MIN_JAVA as OPENSEARCH_JAVA
from indexing.opensearch.node import OPENSEARCH_VERSION

REPOSITORY = "sparse-mm"  # local images are sparse-mm/<engine>:<version>, never an official name
UID = 1000  # the official images' user id, so volumes made by either image stay readable
# OpenSearch keeps the modules its jvm.options and plugins use; jdk.incubator.vector is the one
# a minimal runtime would miss (both engines add it; without it neither starts).
OPENSEARCH_MODULES = (
    "java.se",
    "jdk.incubator.vector",
    "jdk.unsupported",
    "jdk.management",
    "jdk.management.agent",
    "jdk.crypto.ec",
    "jdk.crypto.cryptoki",
    "jdk.zipfs",
    "jdk.localedata",
    "jdk.naming.dns",
    "jdk.httpserver",
    "jdk.jfr",
    "jdk.net",
)
# Elasticsearch's entitlement agent loads jdk.jdi and jdk.jlink at start: jlink cannot make a
# runtime it accepts, so its image carries the whole JDK; these must be in it.
ELASTICSEARCH_REQUIRED = ("jdk.incubator.vector", "jdk.jdi", "jdk.jlink")


@dataclass(frozen=True)
class ImageSpec:
    engine: str  # as on the command line: opensearch | elasticsearch
    label: str  # "OpenSearch"
    version: str
    launcher: str  # bin/<launcher>
    config_file: str  # config/<config_file>
    java_home_variable: str
    config: dict[str, str]  # the image's config file (environment settings override it)
    jlink_modules: tuple[str, ...] | None  # None: the whole JDK
    required_modules: tuple[str, ...]  # the runtime must have these
    required_java: int  # the managed node's minimum
    image_variable: str  # names the image compose and the tests run
    official_image: str  # that variable's default

    def image(self, env: Mapping[str, str]) -> str:
        """The image compose and the tests run: the variable's, else the official one."""
        return env.get(self.image_variable) or self.official_image

    @property
    def tag(self) -> str:
        return f"{REPOSITORY}/{self.engine}:{self.version}"

    @property
    def home(self) -> str:
        return f"/usr/share/{self.engine}"


OPENSEARCH = ImageSpec(
    engine="opensearch",
    label="OpenSearch",
    version=OPENSEARCH_VERSION,
    launcher="opensearch",
    config_file="opensearch.yml",
    java_home_variable="OPENSEARCH_JAVA_HOME",
    config={"cluster.name": "sparse-mm", "network.host": "0.0.0.0"},
    jlink_modules=OPENSEARCH_MODULES,
    required_modules=("jdk.incubator.vector",),
    required_java=OPENSEARCH_JAVA,
    image_variable="SPARSE_MM_OPENSEARCH_IMAGE",
    official_image=f"opensearchproject/opensearch:{OPENSEARCH_VERSION}",
)
ELASTICSEARCH = ImageSpec(
    engine="elasticsearch",
    label="Elasticsearch",
    version=ELASTICSEARCH_VERSION,
    launcher="elasticsearch",
    config_file="elasticsearch.yml",
    java_home_variable="ES_JAVA_HOME",
    # the minimal distribution has x-pack-security but no way to set it up in an image: off,
    # as on the managed node (a local development engine)
    config={
        "cluster.name": "sparse-mm",
        "network.host": "0.0.0.0",
        "xpack.security.enabled": "false",
    },
    jlink_modules=None,
    required_modules=ELASTICSEARCH_REQUIRED,
    required_java=ELASTICSEARCH_JAVA,
    image_variable="SPARSE_MM_ELASTICSEARCH_IMAGE",
    official_image=f"docker.elastic.co/elasticsearch/elasticsearch:{ELASTICSEARCH_VERSION}",
)
SPECS = {spec.engine: spec for spec in (OPENSEARCH, ELASTICSEARCH)}
