"""A real OpenSearch node on 127.0.0.1, assembled from Maven Central, for machines without Docker.

Layout under the home directory (default `$SPARSE_MM_HOME`, else `~/.cache/sparse-mm/opensearch`,
or `/var/cache/sparse-mm/<user>/opensearch` for root, whose home the node's user cannot enter):

    artifacts/                      resolved files (the core distribution, the k-NN plugin and
                                    the jars of core modules the core zip lacks)
    dist/opensearch-<v>/            the assembled distribution, k-NN installed; built once
    dist/opensearch-<v>-secure/     the same plus the security plugin (`--secure`; built once,
                                    the first time a secured node starts)
    nodes/<port>/                   one node's config, data, logs and node.json (pid, port, log);
                                    a secured node's certificates and credentials besides
                                    (indexing/opensearch/security.py)

Assembly happens in a temporary folder that is renamed into place only when complete, so an
interrupted first start never leaves a half-built distribution for later starts to trip over.
The lifecycle (start, readiness, stop, status, running as `nobody` when started by root) is
every managed node's (indexing/local_node.py).

A node started with `secure=True` runs the real security plugin: HTTPS and TLS between nodes
with certificates made locally by openssl, basic auth, an `admin` and a read-only `reader`
user whose passwords are generated into 0600 files (indexing/opensearch/security.py).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from indexing.artifacts import Artifact, resolve
from indexing.jdk import Jdk
from indexing.local_node import (
    LocalNode,
    Probe,
    cache_home,
    extract_zip,
    node_name,
    recorded_ports,
    transport_port,
)
from indexing.local_node import (
    NodeStatus as LocalStatus,
)
from indexing.opensearch.modules import install_modules, missing_modules
from indexing.opensearch.security import (
    ADMIN,
    READER,
    SecurityFiles,
    install_rule_framework,
    security_artifacts,
    security_settings,
)
from sparse_mm.errors import ConfigError, EngineError

# The one place the engine version is pinned; docker-compose.yml must match (a test checks).
# 3.4.0 is the newest release with all of the core zip, the k-NN plugin and the security plugin
# on Maven Central (the security plugin stops at 3.4.0.0; indexing/opensearch/security.py says
# what else the secured distribution needs).
OPENSEARCH_VERSION = "3.4.0"
MIN_JAVA = 21  # OpenSearch 3.x
# Modules the project needs: painless (exact vector scripts, and the k-NN plugin extends it),
# mapper-extras (`rank_features`), analysis-common, mustache (the stored search template), the
# HTTP transport. Those the core zip lacks are built from their own jars
# (indexing/opensearch/modules.py).
REQUIRED_MODULES = (
    "lang-painless",
    "mapper-extras",
    "analysis-common",
    "lang-mustache",
    "transport-netty4",
)
_READY = ".sparse-mm-ready"
_Progress = Callable[[str], None]


def default_home() -> Path:
    return cache_home("opensearch")


# SHA-256 of the artifacts of the pinned version, taken when the version was pinned.
# fmt: off
_PINNED_SHA256 = {
    "opensearch-3.4.0.zip": "6540e95fe8bfaedc3eb1c58e829912ea2203af2ac1f88f76411c20a2fc5254a6",
    "opensearch-knn-3.4.0.0.zip": "f6cc96677277521e0dacc82aa078f87df70032026c8c7059623467a4141cfd2f",  # noqa: E501
}
# fmt: on


def core_artifacts(version: str = OPENSEARCH_VERSION) -> list[Artifact]:
    """The integ-test zip (the core distribution on Maven Central; depending on the release it
    carries all core modules or only the transport ones) and the k-NN plugin of the same
    version."""
    artifacts = [
        Artifact("org.opensearch.distribution.integ-test-zip", "opensearch", version, "zip"),
        Artifact("org.opensearch.plugin", "opensearch-knn", f"{version}.0", "zip"),
    ]
    return [replace(a, sha256=_PINNED_SHA256.get(a.filename)) for a in artifacts]


@dataclass
class NodeStatus(LocalStatus):
    """A node's status; a secured node's also says how to connect."""

    def describe(self) -> str:
        text = super().describe()
        if self.running and self.secure:
            admin = f"{self.credentials}/{ADMIN}.password"
            text += (
                f"\n  security plugin: TLS and basic auth; users {ADMIN} (all access) and "
                f"{READER} (read-only),\n  passwords in {self.credentials}/<user>.password "
                f"(mode 0600)\n  connect with:\n"
                f"    export OPENSEARCH_URL={self.url} OPENSEARCH_CA_CERTS={self.ca_certs}\n"
                f'    export OPENSEARCH_USER={ADMIN} OPENSEARCH_PASSWORD="$(cat {admin})"'
            )
        return text


class ManagedNode(LocalNode):
    """One local OpenSearch node, identified by its HTTP port, under a home directory."""

    label = "OpenSearch"
    launcher = "opensearch"
    config_file = "opensearch.yml"
    java_home_variable = "OPENSEARCH_JAVA_HOME"
    conf_variable = "OPENSEARCH_PATH_CONF"
    java_opts_variable = "OPENSEARCH_JAVA_OPTS"
    process_markers = (b"org.opensearch.bootstrap.OpenSearch", b"bin/opensearch")
    min_java = MIN_JAVA

    def __init__(
        self,
        home: Path | None = None,
        port: int = 9200,
        heap: str = "1g",
        *,
        version: str = OPENSEARCH_VERSION,
        settings: dict[str, object] | None = None,
        cluster_name: str = "sparse-mm",
        seed_ports: Sequence[int] = (),
        secure: bool = False,
    ) -> None:
        """`seed_ports` (HTTP ports, this node's included) makes the node one of a cluster of
        local nodes that find each other on loopback; without it the node is a cluster of one.
        `secure` runs the security plugin (a single node only).
        """
        if secure and seed_ports:
            raise ConfigError("a secured managed node runs as a cluster of one (no seed_ports)")
        super().__init__(
            home or default_home(),
            port,
            heap,
            version=version,
            settings=settings,
            cluster_name=cluster_name,
        )
        self.seed_ports = tuple(seed_ports)
        self.secure = secure
        self.security = SecurityFiles(self.node_dir)
        suffix = "-secure" if secure else ""
        self.dist_dir = self.home / "dist" / f"opensearch-{version}{suffix}"

    @property
    def url(self) -> str:
        scheme = "https" if self.secure else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    # ---------------------------------------------------------------- assembly
    def ensure_distribution(self, jdk: Jdk, progress: _Progress) -> Path:
        """Resolve and assemble the distribution once; later calls return at once. A
        distribution assembled by an older sparse-mm that lacks a module now required is
        assembled again."""
        ready = (self.dist_dir / _READY).exists()
        if ready and not missing_modules(self.dist_dir, REQUIRED_MODULES):
            return self.dist_dir
        if self.secure:
            return self._ensure_secure_distribution(jdk, progress)
        core_zip, knn_zip = resolve(
            core_artifacts(self.version), self.home / "artifacts", progress=progress
        )
        self.dist_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".assembling-", dir=self.dist_dir.parent))
        try:
            progress(f"assembling OpenSearch {self.version} with k-NN in {self.dist_dir}")
            root = extract_zip(core_zip, staging)
            absent = missing_modules(root, REQUIRED_MODULES)
            if absent:
                progress(f"building modules {', '.join(absent)} from their Maven Central jars")
                fetch = partial(resolve, dest=self.home / "artifacts", progress=progress)
                install_modules(root, absent, self.version, str(MIN_JAVA), fetch)
            incomplete = missing_modules(root, REQUIRED_MODULES)
            if incomplete:  # a recipe that builds the wrong folder must not pass unnoticed
                raise EngineError(f"modules {incomplete} are incomplete after assembly")
            self._install_plugin(root, knn_zip, jdk)
            (root / _READY).write_text(json.dumps({"version": self.version, "java": jdk.version}))
            os.chmod(staging, 0o755)
            if self.dist_dir.exists():  # a stale, unmarked folder from an older layout
                shutil.rmtree(self.dist_dir)
            root.rename(self.dist_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.dist_dir

    def _ensure_secure_distribution(self, jdk: Jdk, progress: _Progress) -> Path:
        """The plain distribution, copied, plus the rule-framework module and the security
        plugin (indexing/opensearch/security.py says why the module comes from another release)."""
        plain = ManagedNode(self.home, self.port, version=self.version)
        base = plain.ensure_distribution(jdk, progress)
        security_zip, donor_zip = resolve(
            security_artifacts(self.version), self.home / "artifacts", progress=progress
        )
        staging = Path(tempfile.mkdtemp(prefix=".assembling-", dir=self.dist_dir.parent))
        try:
            progress(f"assembling OpenSearch {self.version} with security in {self.dist_dir}")
            root = staging / self.dist_dir.name
            shutil.copytree(base, root, symlinks=True)
            (root / _READY).unlink()
            install_rule_framework(root, donor_zip, self.version, str(MIN_JAVA))
            self._install_plugin(root, security_zip, jdk)
            (root / _READY).write_text(json.dumps({"version": self.version, "java": jdk.version}))
            os.chmod(staging, 0o755)
            if self.dist_dir.exists():
                shutil.rmtree(self.dist_dir)
            root.rename(self.dist_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.dist_dir

    @staticmethod
    def _install_plugin(root: Path, plugin_zip: Path, jdk: Jdk) -> None:
        env = {**os.environ, "OPENSEARCH_JAVA_HOME": str(jdk.home)}
        cmd = [
            str(root / "bin" / "opensearch-plugin"),
            "install",
            "--batch",
            plugin_zip.resolve().as_uri(),
        ]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
            raise EngineError(f"installing {plugin_zip.name} failed: {' | '.join(tail)}")

    # ---------------------------------------------------------------- lifecycle hooks
    def before_start(self, current: LocalStatus) -> None:
        if current.running:
            if current.secure != self.secure:
                what = "with" if current.secure else "without"
                raise EngineError(
                    f"the node on port {self.port} already runs {what} the security plugin; "
                    "stop it first, or pick another --port"
                )
            return
        if not self.secure and self.security.credentials.exists():
            raise EngineError(
                f"the node on port {self.port} was set up with the security plugin: start it "
                f"with --secure, or delete {self.node_dir} to start it without"
            )

    def prepare(self, dist: Path, jdk: Jdk, progress: _Progress) -> None:
        if self.secure:
            self.security.prepare(dist, jdk.java, progress)

    def private_paths(self) -> tuple[Path, ...]:
        return (self.security.credentials,)

    def finish_status(self, info: LocalStatus) -> None:
        if self.secure:
            info.secure = True
            info.ca_certs = str(self.security.ca)
            info.credentials = str(self.security.credentials)

    def engine_settings(self) -> dict[str, object]:
        if self.secure:
            self.security.install(self.node_dir / "config")
        return {**self._discovery(), **(security_settings() if self.secure else {})}

    def _discovery(self) -> dict[str, object]:
        if not self.seed_ports:
            return {"discovery.type": "single-node"}
        # The first election needs every listed node; once the cluster has formed, restarted
        # nodes ignore this list and rejoin through the seed hosts.
        return {
            "discovery.seed_hosts": [f"127.0.0.1:{transport_port(p)}" for p in self.seed_ports],
            "cluster.initial_cluster_manager_nodes": [node_name(p) for p in self.seed_ports],
        }

    def is_ready(self) -> bool:
        # A node of a cluster still forming answers, but has no health to report yet:
        # waiting for the cluster is the caller's business (it knows how many nodes).
        probe = self._probe()
        return probe.answers() if self.seed_ports else probe.cluster_ready()

    def _probe(self) -> Probe:
        """A secured node is asked over TLS with the admin's credentials, and answers 503
        until the security plugin has initialised its index."""
        if not self.secure:
            return Probe(self.url)
        context = ssl.create_default_context(cafile=str(self.security.ca))
        token = f"{ADMIN}:{self.security.read_password(ADMIN)}".encode()
        return Probe(self.url, context, "Basic " + base64.b64encode(token).decode())

    def status(self) -> NodeStatus:
        return NodeStatus(**vars(super().status()))

    def start(self, timeout: float = 180.0, progress: _Progress = lambda _m: None):
        return NodeStatus(**vars(super().start(timeout, progress)))


def managed_ports(home: Path | None = None) -> list[int]:
    """Ports of the nodes recorded under `home` (running or not)."""
    return recorded_ports(home or default_home())
