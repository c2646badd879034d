"""Resolve OpenSearch artifacts from Maven Central.

Maven itself does the resolving when `mvn` is on the PATH, so that the user's settings.xml
(mirrors, proxies, credentials) applies and its local repository caches the files; one Maven run
resolves all the files a call asks for (each run costs seconds of JVM start). Without
`mvn`, the same files are downloaded over HTTPS from the standard repository layout of the
repository in `$SPARSE_MM_MAVEN_REPO`, or else of the mirror that Maven's own settings
(`~/.m2/settings.xml`) name for central; no repository is written in the code. Either way,
an artifact with a pinned SHA-256 is checked against it (Maven Central publishes no checksum at
all for some plugin zips, e.g. the k-NN plugin); without a pin, the HTTPS route checks the
strongest checksum published next to the file and refuses a file that has none.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sparse_mm.errors import EngineError

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


@dataclass(frozen=True)
class Artifact:
    """One Maven coordinate, e.g. `org.opensearch.plugin:opensearch-knn:3.6.0.0:zip`."""

    group: str
    name: str
    version: str
    packaging: str = "jar"
    sha256: str | None = None  # pinned digest, verified after resolution on every route

    @property
    def coordinate(self) -> str:
        return f"{self.group}:{self.name}:{self.version}:{self.packaging}"

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}.{self.packaging}"

    def url(self, repository: str) -> str:
        group_path = self.group.replace(".", "/")
        return f"{repository.rstrip('/')}/{group_path}/{self.name}/{self.version}/{self.filename}"


def resolve(
    artifacts: list[Artifact],
    dest: Path,
    *,
    progress: Callable[[str], None] = lambda _msg: None,
) -> list[Path]:
    """Put each artifact's file into `dest` and return the paths, in order.

    Uses `mvn` when available (set `SPARSE_MM_NO_MAVEN=1` to force the HTTPS route).
    """
    dest.mkdir(parents=True, exist_ok=True)
    mvn = None if os.environ.get("SPARSE_MM_NO_MAVEN") else shutil.which("mvn")
    missing = list({a.filename: a for a in artifacts if not (dest / a.filename).exists()}.values())
    if missing and mvn:
        for artifact in missing:
            progress(f"resolving {artifact.coordinate} with Maven")
        _resolve_with_maven(mvn, missing, dest)
    for artifact in missing:
        target = dest / artifact.filename
        if not mvn:
            progress(f"downloading {artifact.coordinate} (mvn not found)")
            _download_verified(artifact, target)
        if artifact.sha256:
            _check_pinned(artifact, target)
    return [dest / artifact.filename for artifact in artifacts]


def copy_pom(artifacts: list[Artifact]) -> str:
    """A throwaway POM whose only job is to let one `dependency:copy` run fetch `artifacts`."""
    items = "".join(
        f"<artifactItem><groupId>{a.group}</groupId><artifactId>{a.name}</artifactId>"
        f"<version>{a.version}</version><type>{a.packaging}</type></artifactItem>"
        for a in artifacts
    )
    group, name, version = DEPENDENCY_PLUGIN.split(":")
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>sparse-mm</groupId><artifactId>resolve</artifactId><version>0</version>"
        "<packaging>pom</packaging><build><plugins><plugin>"
        f"<groupId>{group}</groupId><artifactId>{name}</artifactId><version>{version}</version>"
        f"<configuration><artifactItems>{items}</artifactItems></configuration>"
        "</plugin></plugins></build></project>\n"
    )


def _resolve_with_maven(mvn: str, artifacts: list[Artifact], dest: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="sparse-mm-resolve-") as folder:
        pom = Path(folder) / "pom.xml"
        pom.write_text(copy_pom(artifacts))
        # the output folder stays on the command line, not in the POM (it is a user property)
        cmd = [mvn, "-B", "-q", "-f", str(pom), f"{DEPENDENCY_PLUGIN}:copy"]
        cmd.append(f"-DoutputDirectory={dest}")
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
        except subprocess.TimeoutExpired as exc:
            raise EngineError(f"Maven took too long resolving {artifacts[0].coordinate}") from exc
    absent = [a.coordinate for a in artifacts if not (dest / a.filename).exists()]
    if done.returncode != 0 or absent:
        lines = (done.stdout + done.stderr).strip().splitlines()
        errors = [line for line in lines if "ERROR" in line] or lines
        detail = errors[0].strip() if errors else f"exit status {done.returncode}"
        raise EngineError(
            f"Maven could not resolve {', '.join(absent or [a.coordinate for a in artifacts])}: "
            f"{detail[:300]} (check your network or the mirrors in ~/.m2/settings.xml)"
        )


def maven_repository(settings: Path | None = None) -> str:
    """The repository to download from without `mvn`: `$SPARSE_MM_MAVEN_REPO`, else the mirror
    of central (or of `*`) in Maven's user settings; EngineError (one line) when neither is set."""
    configured = os.environ.get("SPARSE_MM_MAVEN_REPO")
    if configured:
        return configured
    settings = settings or Path.home() / ".m2" / "settings.xml"
    mirror = _central_mirror(settings) if settings.is_file() else None
    if mirror:
        return mirror
    raise EngineError(
        "mvn is not on the PATH and no Maven repository is configured: install Maven "
        "(e.g. `apt-get install maven`; it resolves through your ~/.m2/settings.xml), or set "
        "SPARSE_MM_MAVEN_REPO to a Maven repository URL"
    )


def _central_mirror(settings: Path) -> str | None:
    try:
        root = ET.parse(settings).getroot()
    except ET.ParseError as exc:
        raise EngineError(f"{settings} is not valid XML: {exc}") from exc
    for mirror in root.iter():
        if not mirror.tag.endswith("}mirror") and mirror.tag != "mirror":
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "").strip() for child in mirror}
        mirror_of = {part.strip() for part in fields.get("mirrorOf", "").split(",")}
        if mirror_of & {"*", "central", "external:*"} and fields.get("url"):
            return fields["url"]
    return None


def _download_verified(artifact: Artifact, target: Path) -> None:
    url = artifact.url(maven_repository())
    algorithm, expected = (
        ("sha256", artifact.sha256) if artifact.sha256 else _published_checksum(url)
    )
    partial = target.with_name(target.name + ".part")
    digest = hashlib.new(algorithm)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise EngineError(f"could not download {url}: {exc}") from exc
    if digest.hexdigest() != expected:
        partial.unlink(missing_ok=True)
        raise EngineError(f"checksum mismatch for {url} ({algorithm}); refusing to use it")
    partial.replace(target)


def _check_pinned(artifact: Artifact, path: Path) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != artifact.sha256:
        path.unlink()
        raise EngineError(
            f"{artifact.coordinate} does not match its pinned SHA-256 (got {digest.hexdigest()}); "
            "the file was removed: check your Maven mirror"
        )


def _published_checksum(url: str) -> tuple[str, str]:
    """The strongest checksum the repository publishes beside `url`: (algorithm, hex digest)."""
    for algorithm in ("sha512", "sha256", "sha1"):
        try:
            with urllib.request.urlopen(f"{url}.{algorithm}", timeout=30) as response:
                text = response.read().decode("ascii", "replace").strip()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                continue
            raise EngineError(f"could not fetch the checksum of {url}: {exc}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise EngineError(f"could not reach {url}: {exc}") from exc
        if text:
            return algorithm, text.split()[0].lower()
    raise EngineError(f"no published checksum for {url}; refusing an unverified download")
