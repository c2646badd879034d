"""`sparse-mm image build`'s pure parts: the Dockerfile, entry point and config it writes, and
the inputs hash that decides whether an image is reused."""

from __future__ import annotations

import subprocess
from dataclasses import replace

import pytest

from indexing.images.recipe import (
    ENTRYPOINT,
    config_text,
    dockerfile,
    entrypoint,
    inputs_hash,
)
from indexing.images.spec import ELASTICSEARCH, OPENSEARCH, SPECS

INPUTS = {
    "base_id": "sha256:aaa",
    "artifacts": ["g:a:1:zip@d1", "lib/x.jar:10"],
    "java_version": "25",
}


def test_tags_are_local_names_of_the_pinned_versions_never_official_ones():
    assert OPENSEARCH.tag == f"sparse-mm/opensearch:{OPENSEARCH.version}"
    assert ELASTICSEARCH.tag == f"sparse-mm/elasticsearch:{ELASTICSEARCH.version}"
    for spec in SPECS.values():
        assert not spec.tag.startswith(spec.official_image.split(":")[0])
        assert spec.official_image.endswith(f":{spec.version}")


def test_the_image_comes_from_its_variable_else_the_official_one():
    assert OPENSEARCH.image({}) == OPENSEARCH.official_image
    env = {"SPARSE_MM_OPENSEARCH_IMAGE": "sparse-mm/opensearch:3.4.0"}
    assert OPENSEARCH.image(env) == "sparse-mm/opensearch:3.4.0"
    assert ELASTICSEARCH.image(env) == ELASTICSEARCH.official_image


@pytest.mark.parametrize("spec", list(SPECS.values()), ids=list(SPECS))
def test_dockerfile_runs_as_a_non_root_user_from_the_context_it_is_given(spec):
    text = dockerfile(spec, "sparse-mm/base:bookworm", {"org.sparse-mm.inputs": "abc"})
    lines = text.splitlines()
    assert lines[1] == "FROM sparse-mm/base:bookworm"
    assert "USER 1000:0" in lines
    assert all(not line.startswith("USER root") for line in lines)
    for source in ("dist", "jdk", spec.config_file, "entrypoint.sh"):
        assert any(line.startswith(f"COPY --chown=1000:0 {source} ") for line in lines)
    assert f"ENV {spec.java_home_variable}={spec.home}/jdk" in lines
    assert f'ENTRYPOINT ["{ENTRYPOINT}"]' in lines
    assert 'org.sparse-mm.inputs="abc"' in text
    assert "command -v curl" in text  # the compose healthchecks need it


def test_entrypoint_passes_dotted_variables_as_settings_and_opensearch_honours_security_switch(
    tmp_path,
):
    """Run the entry point's own text under bash, with a stand-in launcher that prints its
    arguments: `discovery.type=single-node` must arrive as -E, DISABLE_SECURITY_PLUGIN as the
    plugin's switch."""
    home = tmp_path / "home"
    (home / "bin").mkdir(parents=True)
    (home / "plugins" / "opensearch-security").mkdir(parents=True)
    (home / "bin" / "opensearch").write_text('#!/bin/bash\nprintf "%s\\n" "$@"\n')
    (home / "bin" / "opensearch").chmod(0o755)
    script = tmp_path / "entry.sh"
    script.write_text(
        entrypoint(replace(OPENSEARCH, engine="opensearch")).replace(
            f"cd {OPENSEARCH.home}", f"cd {home}"
        )
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "discovery.type": "single-node",
        "DISABLE_SECURITY_PLUGIN": "true",
        "PLAIN": "x",
    }
    done = subprocess.run(
        ["bash", str(script), "--extra"], env=env, capture_output=True, text=True, check=True
    )
    args = done.stdout.split()
    assert "-Ediscovery.type=single-node" in args
    assert "-Eplugins.security.disabled=true" in args
    assert args[-1] == "--extra"
    assert not any("PLAIN" in a for a in args)


def test_elasticsearch_entrypoint_has_no_opensearch_security_switch():
    text = entrypoint(ELASTICSEARCH)
    assert "exec bin/elasticsearch" in text
    assert "DISABLE_SECURITY_PLUGIN" not in text


def test_config_listens_beyond_loopback_and_elasticsearch_security_is_off():
    assert "network.host: 0.0.0.0" in config_text(OPENSEARCH).splitlines()
    assert "xpack.security.enabled: false" in config_text(ELASTICSEARCH).splitlines()


def test_inputs_hash_is_stable_and_changes_with_every_input():
    first = inputs_hash(OPENSEARCH, **INPUTS)
    assert first == inputs_hash(OPENSEARCH, **{**INPUTS, "artifacts": INPUTS["artifacts"][::-1]})
    changed = [
        inputs_hash(OPENSEARCH, **{**INPUTS, "base_id": "sha256:bbb"}),
        inputs_hash(OPENSEARCH, **{**INPUTS, "java_version": "21.0.5"}),
        inputs_hash(OPENSEARCH, **{**INPUTS, "artifacts": ["g:a:1:zip@d2", "lib/x.jar:10"]}),
        inputs_hash(OPENSEARCH, **{**INPUTS, "artifacts": ["g:a:1:zip@d1", "lib/x.jar:11"]}),
        inputs_hash(replace(OPENSEARCH, version="3.5.0"), **INPUTS),
        inputs_hash(replace(OPENSEARCH, jlink_modules=None), **INPUTS),
        inputs_hash(ELASTICSEARCH, **INPUTS),
    ]
    assert len({first, *changed}) == len(changed) + 1
