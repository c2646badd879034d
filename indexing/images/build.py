"""One engine image: reused when an image of the same inputs is there, else built from the
managed node's own distribution (assembled once, indexing/<engine>/node.py) and runtime."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from indexing.artifacts import Artifact
from indexing.images import docker
from indexing.images.base import base_tag, make_base, system_source
from indexing.images.recipe import INPUTS_LABEL, config_text, dockerfile, entrypoint, inputs_hash
from indexing.images.runtime import check_modules, make_runtime, runtime_modules
from indexing.images.spec import ImageSpec
from indexing.jdk import Jdk, find_jdk
from sparse_mm.errors import EngineError

Progress = Callable[[str], None]
_SKIP = {".sparse-mm-ready"}


@dataclass(frozen=True)
class Built:
    tag: str
    reused: bool
    seconds: float
    size: int | None

    def describe(self) -> str:
        size = f", {self.size / 1e6:.0f} MB" if self.size else ""
        if self.reused:
            return f"{self.tag}: up to date (same inputs){size}"
        return f"{self.tag}: built in {self.seconds:.0f} s{size}"


def _node(spec: ImageSpec):
    """The managed node whose distribution the image carries: OpenSearch's secured one (k-NN
    and the security plugin, which the image turns off unless asked)."""
    if spec.engine == "opensearch":
        from indexing.opensearch.node import ManagedNode

        return ManagedNode(secure=True)
    from indexing.elasticsearch.node import ElasticsearchNode

    return ElasticsearchNode()


def pinned_artifacts(spec: ImageSpec) -> list[Artifact]:
    if spec.engine == "opensearch":
        from indexing.opensearch.node import core_artifacts
        from indexing.opensearch.security import security_artifacts

        return [*core_artifacts(spec.version), *security_artifacts(spec.version)]
    from indexing.elasticsearch.node import distribution_artifact

    return [distribution_artifact(spec.version)]


def listing(root: Path) -> list[str]:
    """Every file of a distribution with its size: what the image copies, in short."""
    entries = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            if name not in _SKIP and not path.is_symlink():
                entries.append(f"{path.relative_to(root)}:{path.stat().st_size}")
    return sorted(entries)


def resolve_base(base: str | None, progress: Progress) -> str:
    """The base image to build on: `base` (present, or pulled), else sparse-mm/base:<codename>
    (made from the system's apt source when absent)."""
    if base is not None:
        if docker.image_id(base) is None:
            progress(f"pulling the base image {base}")
            if not docker.pull(base):
                raise EngineError(f"the base image {base} is not present and cannot be pulled")
        return base
    source = system_source()
    tag = base_tag(source)
    if docker.image_id(tag) is None:
        make_base(source, tag, progress)
    else:
        progress(f"base image {tag} is present")
    return tag


def _link_tree(src: Path, dest: Path) -> None:
    """Hard links where the file system allows (the context is only read), copies elsewhere."""

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dest, symlinks=True, copy_function=link, ignore=_ignore)


def _ignore(_folder: str, names: Iterable[str]) -> set[str]:
    return {n for n in names if n in _SKIP}


def build_image(spec: ImageSpec, base: str | None, progress: Progress) -> Built:
    began = time.monotonic()
    docker.require_daemon()
    jdk = find_jdk(spec.required_java, spec.java_home_variable, spec.label)
    check_modules(spec, jdk, runtime_modules(jdk))
    base_ref = resolve_base(base, progress)
    dist = _node(spec).ensure_distribution(jdk, progress)
    described = [f"{a.coordinate}@{a.sha256}" for a in pinned_artifacts(spec)] + listing(dist)
    digest = inputs_hash(
        spec,
        base_id=docker.image_id(base_ref) or base_ref,
        artifacts=described,
        java_version=jdk.version,
    )
    if docker.image_label(spec.tag, INPUTS_LABEL) == digest:
        return Built(spec.tag, True, time.monotonic() - began, docker.image_size(spec.tag))
    progress(f"building {spec.tag} on {base_ref} (Java {jdk.version}, inputs {digest[:12]})")
    _build_context_and_image(spec, base_ref, dist, jdk, digest, progress)
    return Built(spec.tag, False, time.monotonic() - began, docker.image_size(spec.tag))


def _build_context_and_image(
    spec: ImageSpec, base_ref: str, dist: Path, jdk: Jdk, digest: str, progress: Progress
) -> None:
    with tempfile.TemporaryDirectory(prefix=".image-", dir=dist.parent) as work:
        context = Path(work)
        _link_tree(dist, context / "dist")
        for folder in ("data", "logs"):
            (context / "dist" / folder).mkdir(exist_ok=True)
        progress(f"making the Java runtime ({'jlink' if spec.jlink_modules else 'whole JDK'})")
        make_runtime(spec, jdk, context / "jdk")
        (context / spec.config_file).write_text(config_text(spec))
        script = context / "entrypoint.sh"
        script.write_text(entrypoint(spec))
        script.chmod(0o755)
        labels = {
            INPUTS_LABEL: digest,
            "org.opencontainers.image.title": f"{spec.label} {spec.version} (sparse-mm)",
            "org.opencontainers.image.version": spec.version,
        }
        (context / "Dockerfile").write_text(dockerfile(spec, base_ref, labels))
        docker.build(context, spec.tag, progress)
