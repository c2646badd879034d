"""A real OpenSearch node on 127.0.0.1, assembled from Maven Central, for machines without Docker.

Layout under the home directory (default `$SPARSE_MM_HOME`, else `~/.cache/sparse-mm/opensearch`,
or `/var/cache/sparse-mm/opensearch` for root, whose home the node's user cannot enter):

    artifacts/                      resolved files (the core distribution, the k-NN plugin and
                                    the jars of core modules the core zip lacks)
    dist/opensearch-<v>/            the assembled distribution, k-NN installed; built once
    dist/opensearch-<v>-secure/     the same plus the security plugin (`--secure`; built once,
                                    the first time a secured node starts)
    nodes/<port>/                   one node's config, data, logs and node.json (pid, port, log);
                                    a secured node's certificates and credentials besides
                                    (indexing/security.py)

Assembly happens in a temporary folder that is renamed into place only when complete, so an
interrupted first start never leaves a half-built distribution for later starts to trip over.
OpenSearch refuses to run as root; when started by root the node runs as `nobody` (or
`$SPARSE_MM_OPENSEARCH_USER`).

A node started with `secure=True` runs the real security plugin: HTTPS and TLS between nodes
with certificates made locally by openssl, basic auth, an `admin` and a read-only `reader`
user whose passwords are generated into 0600 files (indexing/security.py).
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

from indexing.artifacts import Artifact, resolve
from indexing.jdk import Jdk, find_jdk
from indexing.modules import install_modules, missing_modules
from indexing.security import (
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
# on Maven Central (the security plugin stops at 3.4.0.0; indexing/security.py says what else
# the secured distribution needs).
OPENSEARCH_VERSION = "3.4.0"
MIN_JAVA = 21  # OpenSearch 3.x
# Modules the project needs: painless (exact vector scripts, and the k-NN plugin extends it),
# mapper-extras (`rank_features`), analysis-common, mustache (the stored search template), the
# HTTP transport. Those the core zip lacks are built from their own jars (indexing/modules.py).
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
    if os.environ.get("SPARSE_MM_HOME"):
        return Path(os.environ["SPARSE_MM_HOME"]).expanduser()
    if os.geteuid() == 0:
        return Path("/var/cache/sparse-mm/opensearch")
    return Path.home() / ".cache" / "sparse-mm" / "opensearch"


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
class NodeStatus:
    running: bool
    port: int
    pid: int | None = None
    url: str | None = None
    log: str | None = None
    version: str | None = None
    java: str | None = None
    home: str | None = None
    reused: bool = False
    seconds: float | None = None
    secure: bool = False
    ca_certs: str | None = None  # secured nodes: the CA bundle clients pass as --ca-certs
    credentials: str | None = None  # secured nodes: the folder of <user>.password files

    def describe(self) -> str:
        if not self.running:
            return f"OpenSearch (managed) is not running on port {self.port}"
        verb = "already running" if self.reused else "running"
        took = f" (ready in {self.seconds:.1f}s)" if self.seconds is not None else ""
        text = (
            f"OpenSearch {self.version} {verb} at {self.url}{took}\n"
            f"  pid {self.pid}, Java {self.java}\n  log {self.log}\n  home {self.home}"
        )
        if self.secure:
            admin = f"{self.credentials}/{ADMIN}.password"
            text += (
                f"\n  security plugin: TLS and basic auth; users {ADMIN} (all access) and "
                f"{READER} (read-only),\n  passwords in {self.credentials}/<user>.password "
                f"(mode 0600)\n  connect with:\n"
                f"    export OPENSEARCH_URL={self.url} OPENSEARCH_CA_CERTS={self.ca_certs}\n"
                f'    export OPENSEARCH_USER={ADMIN} OPENSEARCH_PASSWORD="$(cat {admin})"'
            )
        return text


class ManagedNode:
    """One local node, identified by its HTTP port, under a home directory."""

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
        self.home = (home or default_home()).expanduser().resolve()
        self.port = port
        self.heap = heap
        self.version = version
        self.settings = settings or {}
        self.cluster_name = cluster_name
        self.seed_ports = tuple(seed_ports)
        self.node_dir = self.home / "nodes" / str(port)
        self.secure = secure
        self.security = SecurityFiles(self.node_dir)
        suffix = "-secure" if secure else ""
        self.dist_dir = self.home / "dist" / f"opensearch-{version}{suffix}"

    @property
    def url(self) -> str:
        scheme = "https" if self.secure else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def name(self) -> str:
        return _node_name(self.port)

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
            root = _extract_zip(core_zip, staging)
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
        plugin (indexing/security.py says why the module comes from another release)."""
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

    # ---------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 180.0, progress: _Progress = lambda _m: None) -> NodeStatus:
        """Start the node (assembling it on first use) and wait until it answers."""
        current = self.status()
        if current.running:
            if current.secure != self.secure:
                what = "with" if current.secure else "without"
                raise EngineError(
                    f"the node on port {self.port} already runs {what} the security plugin; "
                    "stop it first, or pick another --port"
                )
            current.reused = True
            return current
        if not self.secure and self.security.credentials.exists():
            raise EngineError(
                f"the node on port {self.port} was set up with the security plugin: start it "
                f"with --secure, or delete {self.node_dir} to start it without"
            )
        if _port_in_use(self.port):
            raise EngineError(
                f"port {self.port} is already in use by another program; "
                "pick another with --port or stop that program"
            )
        began = time.monotonic()
        jdk = find_jdk(MIN_JAVA)
        dist = self.ensure_distribution(jdk, progress)
        if self.secure:
            self.security.prepare(dist, jdk.java, progress)
        config_dir = self._write_node_config(dist)
        log = self.node_dir / "logs" / "console.log"
        run_as = _unprivileged_user()
        if run_as is not None:  # credentials stay the starting user's, unreadable to the node's
            _chown_tree(self.node_dir, run_as, keep=(self.security.credentials,))
        env = {
            **os.environ,
            "OPENSEARCH_JAVA_HOME": str(jdk.home),
            "OPENSEARCH_PATH_CONF": str(config_dir),
            "OPENSEARCH_JAVA_OPTS": f"-Xms{self.heap} -Xmx{self.heap}",
        }
        progress(f"starting OpenSearch {self.version} on {self.url} (Java {jdk.version})")
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [str(dist / "bin" / "opensearch")],
                cwd=dist,  # jvm.options names the agent jar relative to the distribution
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlive this command; stop() signals the group
                user=run_as.pw_uid if run_as else None,
                group=run_as.pw_gid if run_as else None,
                extra_groups=[] if run_as else None,
            )
        info = NodeStatus(
            running=True,
            port=self.port,
            pid=proc.pid,
            url=self.url,
            log=str(self.node_dir / "logs" / "sparse-mm.log"),
            version=self.version,
            java=jdk.version,
            home=str(self.home),
        )
        if self.secure:
            info.secure = True
            info.ca_certs = str(self.security.ca)
            info.credentials = str(self.security.credentials)
        (self.node_dir / "node.json").write_text(json.dumps(asdict(info), indent=2))
        self._wait_until_ready(proc, timeout)
        info.seconds = time.monotonic() - began
        return info

    def _write_node_config(self, dist: Path) -> Path:
        config_dir = self.node_dir / "config"
        if config_dir.exists():
            shutil.rmtree(config_dir)
        shutil.copytree(dist / "config", config_dir)
        for sub in ("data", "logs"):
            (self.node_dir / sub).mkdir(parents=True, exist_ok=True)
        settings: dict[str, object] = {
            "cluster.name": self.cluster_name,
            "node.name": self.name,
            "network.host": "127.0.0.1",
            "http.port": self.port,
            "transport.port": _transport_port(self.port),
            **self._discovery(),
            "path.data": str(self.node_dir / "data"),
            "path.logs": str(self.node_dir / "logs"),
            # A development node on a shared disk: never turn indices read-only at 95% full.
            "cluster.routing.allocation.disk.threshold_enabled": False,
            **(security_settings() if self.secure else {}),
            **self.settings,
        }
        if self.secure:
            self.security.install(config_dir)
        lines = [f"{key}: {json.dumps(value)}" for key, value in settings.items()]
        (config_dir / "opensearch.yml").write_text("\n".join(lines) + "\n")
        # jvm.options names gc logs, heap dumps and crash files relative to the working
        # directory (the shared, read-only distribution): point them into this node's logs.
        jvm_options = config_dir / "jvm.options"
        logs = self.node_dir / "logs"
        text = jvm_options.read_text().replace("=logs/", f"={logs}/")
        jvm_options.write_text(text.replace("HeapDumpPath=data", f"HeapDumpPath={logs}"))
        return config_dir

    def _discovery(self) -> dict[str, object]:
        if not self.seed_ports:
            return {"discovery.type": "single-node"}
        # The first election needs every listed node; once the cluster has formed, restarted
        # nodes ignore this list and rejoin through the seed hosts.
        return {
            "discovery.seed_hosts": [f"127.0.0.1:{_transport_port(p)}" for p in self.seed_ports],
            "cluster.initial_cluster_manager_nodes": [_node_name(p) for p in self.seed_ports],
        }

    def _wait_until_ready(self, proc: subprocess.Popen, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                (self.node_dir / "node.json").unlink(missing_ok=True)
                raise EngineError(
                    f"OpenSearch exited during start (status {proc.returncode}); "
                    f"last log lines: {self._log_tail()}"
                )
            # A node of a cluster still forming answers, but has no health to report yet:
            # waiting for the cluster is the caller's business (it knows how many nodes).
            probe = self._probe()
            if probe.answers() if self.seed_ports else probe.cluster_ready():
                return
            time.sleep(0.5)
        self._terminate(proc.pid)
        raise EngineError(f"OpenSearch did not answer within {timeout:.0f}s; {self._log_tail()}")

    def _probe(self) -> _Probe:
        if not self.secure:
            return _Probe(self.url)
        context = ssl.create_default_context(cafile=str(self.security.ca))
        token = f"{ADMIN}:{self.security.read_password(ADMIN)}".encode()
        return _Probe(self.url, context, "Basic " + base64.b64encode(token).decode())

    def _log_tail(self, lines: int = 5) -> str:
        for name in ("sparse-mm.log", "console.log"):
            path = self.node_dir / "logs" / name
            if path.exists() and path.stat().st_size:
                text = path.read_text(errors="replace").strip().splitlines()
                # Stack frames say nothing to a user; the exception lines above them do.
                useful = [t.strip() for t in text if t.strip() and not _is_stack_frame(t)]
                return " | ".join(useful[-lines:]) + f" (log: {path})"
        return "(no log written)"

    def status(self) -> NodeStatus:
        record = self._record()
        if record is None or not _is_opensearch_process(record.get("pid")):
            return NodeStatus(running=False, port=self.port)
        record["running"] = True
        return NodeStatus(**{k: v for k, v in record.items() if k in NodeStatus.__annotations__})

    def stop(self, timeout: float = 60.0) -> str:
        record = self._record()
        if record is None or not _is_opensearch_process(record.get("pid")):
            return f"OpenSearch (managed) was not running on port {self.port}"
        self._terminate(record["pid"], timeout)
        return f"stopped OpenSearch on port {self.port} (pid {record['pid']})"

    def kill(self) -> int:
        """SIGKILL the node at once, as a crash would (no flush, no goodbye to its cluster);
        returns the pid it had. For fault tests."""
        record = self._record()
        if record is None or not _is_opensearch_process(record.get("pid")):
            raise EngineError(f"no managed node is running on port {self.port}")
        pid = record["pid"]
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and _is_opensearch_process(pid):
            time.sleep(0.05)
        (self.node_dir / "node.json").unlink(missing_ok=True)
        return pid

    def _terminate(self, pid: int, timeout: float = 60.0) -> None:
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _is_opensearch_process(pid):
                time.sleep(0.2)
            if not _is_opensearch_process(pid):
                break
        (self.node_dir / "node.json").unlink(missing_ok=True)

    def _record(self) -> dict | None:
        path = self.node_dir / "node.json"
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None


def managed_ports(home: Path | None = None) -> list[int]:
    """Ports of the nodes recorded under `home` (running or not)."""
    nodes = (home or default_home()) / "nodes"
    return sorted(int(p.name) for p in nodes.glob("*") if (p / "node.json").exists())


def _node_name(port: int) -> str:
    return f"sparse-mm-{port}"


def _transport_port(http_port: int) -> int:
    return http_port + 100


def _extract_zip(archive: Path, dest: Path) -> Path:
    """Extract keeping Unix permission bits (zipfile drops them); return the top folder."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            path = Path(zf.extract(info, dest))
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                path.chmod(mode | 0o444)
    tops = [p for p in dest.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise EngineError(f"unexpected layout in {archive.name}")
    return tops[0]


def _is_stack_frame(line: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(("at ", "... ")) and not stripped.startswith("at least")


def _unprivileged_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    name = os.environ.get("SPARSE_MM_OPENSEARCH_USER", "nobody")
    try:
        return pwd.getpwnam(name)
    except KeyError as exc:
        raise EngineError(
            f"running as root, and user {name!r} for the node does not exist"
        ) from exc


def _chown_tree(root: Path, user: pwd.struct_passwd, keep: Sequence[Path] = ()) -> None:
    """Give `root` to `user`, except the folders `keep` (and what they hold)."""
    for parent in (root, *root.parents):  # the node's user must be able to reach its folder
        if parent.stat().st_mode & 0o001 == 0:
            raise EngineError(f"{parent} is not accessible to user {user.pw_name}; use --home")
    for path in (root, *root.rglob("*")):
        if any(path == k or k in path.parents for k in keep):
            continue
        os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class _Probe:
    """Readiness checks; a secured node is asked over TLS with the admin's credentials, and
    answers 503 until the security plugin has initialised its index."""

    url: str
    context: ssl.SSLContext | None = None
    authorization: str | None = None

    def _get(self, path: str) -> dict | None:
        request = urllib.request.Request(self.url + path)
        if self.authorization:
            request.add_header("Authorization", self.authorization)
        try:
            with urllib.request.urlopen(request, timeout=2, context=self.context) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def cluster_ready(self) -> bool:
        health = self._get("/_cluster/health")
        return health is not None and health.get("status") in ("green", "yellow")

    def answers(self) -> bool:
        return self._get("/") is not None


def _is_opensearch_process(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:  # no /proc (macOS): fall back to "the pid exists"
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return b"org.opensearch.bootstrap.OpenSearch" in cmdline or b"bin/opensearch" in cmdline
