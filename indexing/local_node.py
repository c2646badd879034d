"""What every managed local engine node shares: start, readiness, stop, status, kill.

An engine's node (indexing/<engine>/node.py) subclasses `LocalNode`: it assembles its
distribution once (`ensure_distribution`) and names its launcher, config file, environment
variables and process; the lifecycle here is the same for all. One node is identified by its
HTTP port under a home directory; `nodes/<port>/` holds its config, data, logs and node.json
(pid, port, log). The transport port is the HTTP port + 100.

Both engines refuse to run as root; when started by root a node runs as `nobody` (or the user
named by `$SPARSE_MM_OPENSEARCH_USER`, which applies to every engine). Errors are one line: no
Java recent enough, the port taken by another program, the node exiting or not answering in
time (with the log's last useful lines).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

from indexing.jdk import Jdk, find_jdk
from sparse_mm.errors import EngineError

Progress = Callable[[str], None]
USER_VARIABLE = "SPARSE_MM_OPENSEARCH_USER"


SHARED_CACHE = Path("/var/cache/sparse-mm")


def cache_home(engine: str) -> Path:
    """Default home of an engine's nodes: the engine's home variable (`EngineSpec.home_variable`,
    e.g. `$SPARSE_MM_HOME`), else ~/.cache/sparse-mm/<engine>; for root, whose home directory
    the node's user cannot enter, /var/cache/sparse-mm/<user>/<engine>: still one home per
    user, so that no two users' nodes share a registry."""
    from indexing.registry import engine_spec

    variable = engine_spec(engine).home_variable
    if os.environ.get(variable):
        return Path(os.environ[variable]).expanduser()
    if os.geteuid() == 0:
        return SHARED_CACHE / pwd.getpwuid(os.geteuid()).pw_name / engine
    return Path.home() / ".cache" / "sparse-mm" / engine


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
    engine: str = "OpenSearch"
    started_by: int | None = None  # the uid that started it (`stop` without --port: its own)

    def describe(self) -> str:
        if not self.running:
            return f"{self.engine} (managed) is not running on port {self.port}"
        verb = "already running" if self.reused else "running"
        took = f" (ready in {self.seconds:.1f}s)" if self.seconds is not None else ""
        return (
            f"{self.engine} {self.version} {verb} at {self.url}{took}\n"
            f"  pid {self.pid}, Java {self.java}\n  log {self.log}\n  home {self.home}"
        )


class LocalNode(ABC):
    """One local node of an engine, identified by its HTTP port, under a home directory."""

    label: ClassVar[str]  # "OpenSearch"
    launcher: ClassVar[str]  # bin/<launcher>
    config_file: ClassVar[str]  # "opensearch.yml"
    java_home_variable: ClassVar[str]  # "OPENSEARCH_JAVA_HOME"
    conf_variable: ClassVar[str]  # "OPENSEARCH_PATH_CONF"
    java_opts_variable: ClassVar[str]  # "OPENSEARCH_JAVA_OPTS"
    process_markers: ClassVar[tuple[bytes, ...]]  # in /proc/<pid>/cmdline of a node
    min_java: ClassVar[int] = 21

    def __init__(
        self,
        home: Path,
        port: int,
        heap: str = "1g",
        *,
        version: str,
        settings: dict[str, object] | None = None,
        cluster_name: str = "sparse-mm",
    ) -> None:
        self.home = home.expanduser().resolve()
        self.port = port
        self.heap = heap
        self.version = version
        self.settings = settings or {}
        self.cluster_name = cluster_name
        self.node_dir = self.home / "nodes" / str(port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def name(self) -> str:
        return node_name(self.port)

    # ---------------------------------------------------------------- engine hooks
    @abstractmethod
    def ensure_distribution(self, jdk: Jdk, progress: Progress) -> Path:
        """Resolve and assemble the distribution once; return its folder."""

    @abstractmethod
    def engine_settings(self) -> dict[str, object]:
        """Settings of the config file beyond the common ones (discovery, security...)."""

    def before_start(self, current: NodeStatus) -> None:
        """Refuse to start when the recorded state does not fit (the node is not running)."""
        return None

    def prepare(self, dist: Path, jdk: Jdk, progress: Progress) -> None:
        """Engine-specific files before the config is written."""
        return None

    def private_paths(self) -> tuple[Path, ...]:
        """Folders under the node's folder that stay the starting user's."""
        return ()

    def finish_status(self, info: NodeStatus) -> None:
        """Engine-specific fields of the status written to node.json."""
        return None

    def is_ready(self) -> bool:
        return Probe(self.url).cluster_ready()

    # ---------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 180.0, progress: Progress = lambda _m: None) -> NodeStatus:
        """Start the node (assembling it on first use) and wait until it answers."""
        current = self.status()
        if current.running:
            self.before_start(current)
            current.reused = True
            return current
        self.before_start(current)
        if port_in_use(self.port):
            raise EngineError(
                f"port {self.port} is already in use by another program; "
                "pick another with --port or stop that program"
            )
        began = time.monotonic()
        jdk = find_jdk(self.min_java, self.java_home_variable, self.label)
        dist = self.ensure_distribution(jdk, progress)
        self.prepare(dist, jdk, progress)
        config_dir = self._write_node_config(dist)
        log = self.node_dir / "logs" / "console.log"
        run_as = unprivileged_user()
        if run_as is not None:  # credentials stay the starting user's, unreadable to the node's
            chown_tree(self.node_dir, run_as, keep=self.private_paths())
        env = {
            **os.environ,
            self.java_home_variable: str(jdk.home),
            self.conf_variable: str(config_dir),
            self.java_opts_variable: f"-Xms{self.heap} -Xmx{self.heap}",
        }
        progress(f"starting {self.label} {self.version} on {self.url} (Java {jdk.version})")
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [str(dist / "bin" / self.launcher)],
                cwd=dist,  # jvm.options may name files relative to the distribution
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
            log=str(self.node_dir / "logs" / self.log_name),
            version=self.version,
            java=jdk.version,
            home=str(self.home),
            engine=self.label,
            started_by=os.geteuid(),
        )
        self.finish_status(info)
        (self.node_dir / "node.json").write_text(json.dumps(asdict(info), indent=2))
        self._wait_until_ready(proc, timeout)
        info.seconds = time.monotonic() - began
        return info

    @property
    def log_name(self) -> str:
        """The engine's main log file under logs/ (named after the cluster)."""
        return f"{self.cluster_name}.log"

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
            "transport.port": transport_port(self.port),
            "path.data": str(self.node_dir / "data"),
            "path.logs": str(self.node_dir / "logs"),
            # A development node on a shared disk: never turn indices read-only at 95% full.
            "cluster.routing.allocation.disk.threshold_enabled": False,
            **self.engine_settings(),
            **self.settings,
        }
        lines = [f"{key}: {json.dumps(value)}" for key, value in settings.items()]
        (config_dir / self.config_file).write_text("\n".join(lines) + "\n")
        # jvm.options names gc logs, heap dumps and crash files relative to the working
        # directory (the shared, read-only distribution): point them into this node's logs.
        jvm_options = config_dir / "jvm.options"
        logs = self.node_dir / "logs"
        text = jvm_options.read_text().replace("=logs/", f"={logs}/")
        text = text.replace("file=gc.log", f"file={logs}/gc.log")
        text = text.replace("ErrorFile=hs_err", f"ErrorFile={logs}/hs_err")
        jvm_options.write_text(text.replace("HeapDumpPath=data", f"HeapDumpPath={logs}"))
        return config_dir

    def _wait_until_ready(self, proc: subprocess.Popen, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                (self.node_dir / "node.json").unlink(missing_ok=True)
                raise EngineError(
                    f"{self.label} exited during start (status {proc.returncode}); "
                    f"last log lines: {self._log_tail()}"
                )
            if self.is_ready():
                return
            time.sleep(0.5)
        self._terminate(proc.pid)
        raise EngineError(f"{self.label} did not answer within {timeout:.0f}s; {self._log_tail()}")

    def _log_tail(self, lines: int = 5) -> str:
        for name in (self.log_name, "console.log"):
            path = self.node_dir / "logs" / name
            if path.exists() and path.stat().st_size:
                text = path.read_text(errors="replace").strip().splitlines()
                # Stack frames say nothing to a user; the exception lines above them do.
                useful = [t.strip() for t in text if t.strip() and not _is_stack_frame(t)]
                return " | ".join(useful[-lines:]) + f" (log: {path})"
        return "(no log written)"

    def _alive(self, pid: int | None) -> bool:
        return is_node_process(pid, self.process_markers)

    def status(self) -> NodeStatus:
        record = self._record()
        if record is None or not self._alive(record.get("pid")):
            return NodeStatus(running=False, port=self.port, engine=self.label)
        record["running"] = True
        return NodeStatus(**{k: v for k, v in record.items() if k in NodeStatus.__annotations__})

    def stop(self, timeout: float = 60.0) -> str:
        record = self._record()
        if record is None or not self._alive(record.get("pid")):
            return f"{self.label} (managed) was not running on port {self.port}"
        self._terminate(record["pid"], timeout)
        return f"stopped {self.label} on port {self.port} (pid {record['pid']})"

    def kill(self) -> int:
        """SIGKILL the node at once, as a crash would (no flush, no goodbye to its cluster);
        returns the pid it had. For fault tests."""
        record = self._record()
        if record is None or not self._alive(record.get("pid")):
            raise EngineError(f"no managed node is running on port {self.port}")
        pid = record["pid"]
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and self._alive(pid):
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
            while time.monotonic() < deadline and self._alive(pid):
                time.sleep(0.2)
            if not self._alive(pid):
                break
        (self.node_dir / "node.json").unlink(missing_ok=True)

    def _record(self) -> dict | None:
        path = self.node_dir / "node.json"
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None


def recorded_ports(home: Path) -> list[int]:
    """Ports of the nodes recorded under `home` (running or not)."""
    return sorted(int(p.name) for p in (home / "nodes").glob("*") if (p / "node.json").exists())


def ports_started_by(home: Path, uid: int) -> list[int]:
    """Ports of the nodes recorded under `home` whose record says `uid` started them (a record
    that does not say, written before records did, is nobody's)."""
    mine = []
    for port in recorded_ports(home):
        try:
            record = json.loads((home / "nodes" / str(port) / "node.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if record.get("started_by") == uid:
            mine.append(port)
    return mine


def node_name(port: int) -> str:
    return f"sparse-mm-{port}"


def transport_port(http_port: int) -> int:
    return http_port + 100


def extract_zip(archive: Path, dest: Path) -> Path:
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


def unprivileged_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    name = os.environ.get(USER_VARIABLE, "nobody")
    try:
        return pwd.getpwnam(name)
    except KeyError as exc:
        raise EngineError(
            f"running as root, and user {name!r} for the node does not exist"
        ) from exc


def chown_tree(root: Path, user: pwd.struct_passwd, keep: Sequence[Path] = ()) -> None:
    """Give `root` to `user`, except the folders `keep` (and what they hold)."""
    for parent in (root, *root.parents):  # the node's user must be able to reach its folder
        if parent.stat().st_mode & 0o001 == 0:
            raise EngineError(f"{parent} is not accessible to user {user.pw_name}; use --home")
    for path in (root, *root.rglob("*")):
        if any(path == k or k in path.parents for k in keep):
            continue
        os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Probe:
    """Readiness checks over HTTP(S); a secured node is asked with credentials."""

    url: str
    context: ssl.SSLContext | None = None
    authorization: str | None = None

    def get(self, path: str) -> dict | None:
        request = urllib.request.Request(self.url + path)
        if self.authorization:
            request.add_header("Authorization", self.authorization)
        try:
            with urllib.request.urlopen(request, timeout=2, context=self.context) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def cluster_ready(self) -> bool:
        health = self.get("/_cluster/health")
        return health is not None and health.get("status") in ("green", "yellow")

    def answers(self) -> bool:
        """The node answers HTTP at all (GET /_cluster/health answers even on a node whose
        cluster has not formed yet, with an error body)."""
        request = urllib.request.Request(self.url + "/_cluster/health?timeout=0s")
        if self.authorization:
            request.add_header("Authorization", self.authorization)
        try:
            with urllib.request.urlopen(request, timeout=2, context=self.context):
                return True
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, OSError):
            return False


def is_node_process(pid: int | None, markers: Sequence[bytes]) -> bool:
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
    return any(marker in cmdline for marker in markers)
