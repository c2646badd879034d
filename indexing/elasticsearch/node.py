"""A real Elasticsearch node on 127.0.0.1 from the minimal distribution on Maven Central, for
machines without Docker.

Layout under the home directory (default `$SPARSE_MM_ELASTICSEARCH_HOME`, else
`~/.cache/sparse-mm/elasticsearch`, or `/var/cache/sparse-mm/<user>/elasticsearch` for root):

    artifacts/                      the pinned zip (resolved like OpenSearch's: Maven when it is
                                    on the PATH, else HTTPS; SHA-256 checked either way)
    dist/elasticsearch-<v>/         the extracted distribution; extracted once
    nodes/<port>/                   one node's config, data, logs and node.json

The minimal distribution ("integ-test-zip") carries the server and four modules:
transport-netty4, x-pack-core, x-pack-security and apm. That is enough for `dense_vector` with
HNSW, the `knn` query and `sparse_vector` (indexing/elasticsearch/mapping.py); it has no
painless, no mustache and no `GET /` (405), so readiness is asked of `/_cluster/health`. The
node is a cluster of one with security off (a local development node: bound to 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from indexing.artifacts import Artifact, resolve
from indexing.jdk import Jdk
from indexing.local_node import LocalNode, cache_home, extract_zip, recorded_ports

# The one place the Elasticsearch version is pinned; docker-compose.yml's Elasticsearch image
# must match (a test checks).
ELASTICSEARCH_VERSION = "9.5.3"
MIN_JAVA = 21  # Elasticsearch 9.x
# Maven Central publishes no checksum next to the zip: the digest was taken when it was pinned.
_PINNED_SHA256 = {
    "9.5.3": "bec49f3b8d00e75c8d1cec85c35298635ec9fbd3ae80ef5aeb6bc05abdb3db2d",
}
_READY = ".sparse-mm-ready"


def default_home() -> Path:
    return cache_home("elasticsearch")


def distribution_artifact(version: str = ELASTICSEARCH_VERSION) -> Artifact:
    return Artifact(
        "org.elasticsearch.distribution.integ-test-zip",
        "elasticsearch",
        version,
        "zip",
        sha256=_PINNED_SHA256.get(version),
    )


class ElasticsearchNode(LocalNode):
    """One local Elasticsearch node, identified by its HTTP port, under a home directory."""

    label = "Elasticsearch"
    launcher = "elasticsearch"
    config_file = "elasticsearch.yml"
    java_home_variable = "ES_JAVA_HOME"
    conf_variable = "ES_PATH_CONF"
    java_opts_variable = "ES_JAVA_OPTS"
    # bin/elasticsearch execs a small launcher JVM, which starts the server JVM as its child
    process_markers = (
        b"org.elasticsearch.server.launcher.ServerLauncher",
        b"org.elasticsearch.bootstrap.Elasticsearch",
    )
    min_java = MIN_JAVA

    def __init__(
        self,
        home: Path | None = None,
        port: int = 9201,
        heap: str = "1g",
        *,
        version: str = ELASTICSEARCH_VERSION,
        settings: dict[str, object] | None = None,
        cluster_name: str = "sparse-mm",
    ) -> None:
        super().__init__(
            home or default_home(),
            port,
            heap,
            version=version,
            settings=settings,
            cluster_name=cluster_name,
        )
        self.dist_dir = self.home / "dist" / f"elasticsearch-{version}"

    def ensure_distribution(self, jdk: Jdk, progress) -> Path:
        """Resolve and extract the pinned zip once; later calls return at once. Extraction
        happens in a temporary folder renamed into place when complete."""
        if (self.dist_dir / _READY).exists():
            return self.dist_dir
        (archive,) = resolve(
            [distribution_artifact(self.version)], self.home / "artifacts", progress=progress
        )
        self.dist_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".extracting-", dir=self.dist_dir.parent))
        try:
            progress(f"extracting Elasticsearch {self.version} into {self.dist_dir}")
            root = extract_zip(archive, staging)
            (root / _READY).write_text(json.dumps({"version": self.version, "java": jdk.version}))
            os.chmod(staging, 0o755)
            if self.dist_dir.exists():  # a stale, unmarked folder
                shutil.rmtree(self.dist_dir)
            root.rename(self.dist_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.dist_dir

    def engine_settings(self) -> dict[str, object]:
        # Only settings of the modules the minimal distribution has: an unknown setting (e.g.
        # of machine learning, absent here) stops the node at start.
        return {"discovery.type": "single-node", "xpack.security.enabled": False}


def managed_ports(home: Path | None = None) -> list[int]:
    """Ports of the nodes recorded under `home` (running or not)."""
    return recorded_ports(home or default_home())
