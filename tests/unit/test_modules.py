"""Core modules built from their own jars: descriptors, policies, no jar twice, and a whole
assembly from a core zip that lacks them (fake zips and jars; no network, no Java)."""

from __future__ import annotations

import json
import socket
import zipfile
from pathlib import Path

import pytest

from indexing.artifacts import Artifact
from indexing.jdk import Jdk
from indexing.opensearch.modules import (
    DESCRIPTOR,
    POLICY,
    in_lib,
    install_modules,
    missing_modules,
    module_recipes,
    plugin_descriptor,
    security_policy,
)
from indexing.opensearch.node import MIN_JAVA, OPENSEARCH_VERSION, REQUIRED_MODULES, ManagedNode
from sparse_mm.errors import EngineError

# The properties OpenSearch's PluginInfo refuses to load a plugin without.
MANDATORY_KEYS = {"name", "description", "version", "opensearch.version", "java.version"}


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] not in "#!")
    return {key.strip(): value.strip() for key, value in pairs}


@pytest.mark.parametrize("name", ["lang-painless", "mapper-extras", "analysis-common"])
def test_descriptor_names_the_module_its_class_and_versions(name: str):
    recipe = module_recipes("3.4.0")[name]
    props = _properties(plugin_descriptor(recipe, "3.4.0", "21"))
    assert {key for key, value in props.items() if value} >= MANDATORY_KEYS
    assert props["name"] == name
    assert props["version"] == props["opensearch.version"] == "3.4.0"
    assert props["java.version"] == "21"
    assert props["has.native.controller"] == "false"
    package, _, cls = props["classname"].rpartition(".")
    assert package.startswith("org.opensearch.") and cls.endswith("Plugin")


def test_analysis_common_extends_painless_and_others_extend_nothing():
    # analysis-common's jar registers a painless extension, so painless must load first.
    recipes = module_recipes("3.4.0")
    extended = {n: _properties(plugin_descriptor(r, "3.4.0", "21")) for n, r in recipes.items()}
    assert extended["analysis-common"]["extended.plugins"] == "lang-painless"
    assert extended["mapper-extras"]["extended.plugins"] == ""
    assert extended["lang-painless"]["extended.plugins"] == ""


def test_only_painless_gets_a_policy_and_it_grants_class_loaders():
    recipes = module_recipes("3.4.0")
    policy = security_policy(recipes["lang-painless"])
    assert policy is not None
    assert policy.startswith("grant {") and policy.rstrip().endswith("};")
    assert '"createClassLoader"' in policy and '"getClassLoader"' in policy
    assert security_policy(recipes["mapper-extras"]) is None
    assert security_policy(recipes["analysis-common"]) is None


def test_pinned_version_can_build_every_non_transport_module_from_pinned_jars():
    recipes = module_recipes(OPENSEARCH_VERSION)
    assert {m for m in REQUIRED_MODULES if not m.startswith("transport-")} <= set(recipes)
    unpinned = [a.filename for r in recipes.values() for a in r.jars if not a.sha256]
    assert unpinned == []


def test_in_lib_matches_the_artifact_in_any_version_but_not_a_longer_name():
    asm = Artifact("org.ow2.asm", "asm", "9.7")
    assert in_lib(asm, ["asm-9.5.jar"])
    assert not in_lib(asm, ["asm-util-9.7.jar", "asm-commons-9.7.jar"])
    server = Artifact("org.opensearch", "opensearch", "3.4.0")
    assert in_lib(server, ["opensearch-3.4.0.jar"])
    assert not in_lib(server, ["opensearch-core-3.4.0.jar", "opensearch-x-content-3.4.0.jar"])


def test_missing_modules_needs_a_descriptor_and_a_jar(tmp_path: Path):
    modules = tmp_path / "modules"
    (modules / "no-descriptor").mkdir(parents=True)
    (modules / "no-descriptor" / "a.jar").write_bytes(b"")
    (modules / "no-jar").mkdir()
    (modules / "no-jar" / DESCRIPTOR).write_text("name=no-jar\n")
    (modules / "complete").mkdir()
    (modules / "complete" / "c.jar").write_bytes(b"")
    (modules / "complete" / DESCRIPTOR).write_text("name=complete\n")
    names = ["no-descriptor", "no-jar", "complete", "absent"]
    assert missing_modules(tmp_path, names) == ["no-descriptor", "no-jar", "absent"]


def _fake_fetch(folder: Path, asked: list[str]):
    def fetch(artifacts: list[Artifact]) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for artifact in artifacts:
            asked.append(artifact.filename)
            path = folder / artifact.filename
            path.write_bytes(artifact.filename.encode())
            paths.append(path)
        return paths

    return fetch


def test_install_skips_jars_that_lib_already_has(tmp_path: Path):
    root = tmp_path / "dist"
    (root / "lib").mkdir(parents=True)
    for jar in ("asm-9.5.jar", "opensearch-3.4.0.jar"):
        (root / "lib" / jar).write_bytes(b"")
    asked: list[str] = []
    names = ["lang-painless", "mapper-extras"]
    install_modules(root, names, "3.4.0", "21", _fake_fetch(tmp_path / "repo", asked))
    assert "asm-9.7.jar" not in asked
    painless = sorted(p.name for p in (root / "modules" / "lang-painless").iterdir())
    assert "asm-9.7.jar" not in painless and "asm-util-9.7.jar" in painless
    assert {"lang-painless-3.4.0.jar", DESCRIPTOR, POLICY} <= set(painless)
    assert not (root / "modules" / "mapper-extras" / POLICY).exists()
    assert missing_modules(root, names) == []


def test_install_without_a_recipe_for_the_version_fetches_nothing(tmp_path: Path):
    asked: list[str] = []
    with pytest.raises(EngineError, match=r"lacks modules \['lang-painless'\].*no recipe"):
        install_modules(tmp_path, ["lang-painless"], "9.9.9", "21", _fake_fetch(tmp_path, asked))
    assert asked == []
    assert not (tmp_path / "modules").exists()


def fake_core_zip(path: Path, version: str, modules: list[str]) -> None:
    """A core zip with lib/, the named modules, and a bin/opensearch-plugin that records which
    modules exist when it is asked to install a plugin."""
    top = f"opensearch-{version}"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{top}/lib/opensearch-{version}.jar", b"server")
        zf.writestr(f"{top}/config/jvm.options", "-Xms1g\n")
        for name in modules:
            zf.writestr(f"{top}/modules/{name}/{name}-{version}.jar", b"module")
            zf.writestr(f"{top}/modules/{name}/{DESCRIPTOR}", f"name={name}\n")
        script = zipfile.ZipInfo(f"{top}/bin/opensearch-plugin")
        script.external_attr = 0o755 << 16
        here = '"$(dirname "$0")/.."'
        zf.writestr(script, f"#!/bin/sh\nls {here}/modules > {here}/plugin-install.log\n")


def prepare_home(home: Path, monkeypatch, core_modules: list[str]) -> ManagedNode:
    """A home whose artifacts folder already holds fake files for every pinned artifact, so
    nothing is resolved; any resolution that slips through hits an unreachable repository."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("SPARSE_MM_NO_MAVEN", "1")
    monkeypatch.setenv("SPARSE_MM_MAVEN_REPO", f"http://127.0.0.1:{port}/maven2")
    artifacts = home / "artifacts"
    artifacts.mkdir(parents=True)
    fake_core_zip(
        artifacts / f"opensearch-{OPENSEARCH_VERSION}.zip", OPENSEARCH_VERSION, core_modules
    )
    (artifacts / f"opensearch-knn-{OPENSEARCH_VERSION}.0.zip").write_bytes(b"knn")
    for recipe in module_recipes(OPENSEARCH_VERSION).values():
        for jar in recipe.jars:
            (artifacts / jar.filename).write_bytes(jar.filename.encode())
    return ManagedNode(home=home, port=port)


def test_assembly_builds_the_missing_modules_before_installing_k_nn(tmp_path: Path, monkeypatch):
    node = prepare_home(tmp_path / "home", monkeypatch, ["transport-netty4"])
    jdk = Jdk(home=tmp_path, major=MIN_JAVA, version=str(MIN_JAVA))
    messages: list[str] = []
    dist = node.ensure_distribution(jdk, messages.append)
    assert dist == node.dist_dir
    assert missing_modules(dist, REQUIRED_MODULES) == []
    seen_by_installer = (dist / "plugin-install.log").read_text().split()
    assert set(REQUIRED_MODULES) <= set(seen_by_installer)
    props = _properties((dist / "modules" / "mapper-extras" / DESCRIPTOR).read_text())
    assert props["opensearch.version"] == OPENSEARCH_VERSION
    assert json.loads((dist / ".sparse-mm-ready").read_text())["version"] == OPENSEARCH_VERSION
    assert any("building modules" in m for m in messages)
    assert [p.name for p in dist.parent.iterdir()] == [dist.name]  # no staging folder left
