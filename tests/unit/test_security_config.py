"""The secured managed node's pure parts: the security config it writes, the certificates'
names and extensions, the rule-framework module taken from another release's zip, and what
it tells the user (no engine, no Java; openssl where it is installed)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

from indexing.opensearch import security
from indexing.opensearch.modules import DESCRIPTOR
from indexing.opensearch.node import OPENSEARCH_VERSION, ManagedNode, NodeStatus
from indexing.opensearch.security import (
    ADMIN,
    ADMIN_DN,
    NODE_DN,
    READ_ROLE,
    READER,
    certificate_extensions,
    install_rule_framework,
    internal_users_yml,
    make_certificates,
    roles_mapping_yml,
    roles_yml,
    security_artifacts,
    security_settings,
    subject,
)
from sparse_mm.errors import ConfigError, EngineError
from tests.unit.test_modules import _properties


def test_settings_turn_tls_on_for_both_layers_with_the_generated_files():
    settings = security_settings()
    for layer in ("transport", "http"):
        assert settings[f"plugins.security.ssl.{layer}.pemcert_filepath"] == "node.pem"
        assert settings[f"plugins.security.ssl.{layer}.pemkey_filepath"] == "node-key.pem"
        assert settings[f"plugins.security.ssl.{layer}.pemtrustedcas_filepath"] == "ca.pem"
    assert settings["plugins.security.ssl.http.enabled"] is True
    assert settings["plugins.security.nodes_dn"] == [NODE_DN]
    assert settings["plugins.security.authcz.admin_dn"] == [ADMIN_DN]
    assert settings["plugins.security.allow_default_init_securityindex"] is True
    assert not any("demo" in key for key in settings)  # no demo certificates, no demo users


def test_users_and_mappings_give_admin_everything_and_reader_only_reads():
    users = yaml.safe_load(internal_users_yml({ADMIN: "$2y$12$a", READER: "$2y$12$r"}))
    assert users["_meta"] == {"type": "internalusers", "config_version": 2}
    assert {u: users[u]["hash"] for u in (ADMIN, READER)} == {ADMIN: "$2y$12$a", READER: "$2y$12$r"}
    mapping = yaml.safe_load(roles_mapping_yml())
    assert mapping["all_access"]["users"] == [ADMIN]
    assert mapping[READ_ROLE]["users"] == [READER]
    assert "own_index" not in mapping  # the sample's "everyone owns an index of their name"
    role = yaml.safe_load(roles_yml())[READ_ROLE]
    granted = [*role["cluster_permissions"]]
    for block in role["index_permissions"]:
        granted += block["allowed_actions"]
    assert "read" in granted
    assert not any("write" in g or "create" in g or "manage" in g or g == "crud" for g in granted)


def test_subject_is_the_rfc2253_name_reversed():
    assert subject("CN=node,O=sparse-mm") == "/O=sparse-mm/CN=node"


def test_node_certificate_serves_127_0_0_1_and_admin_only_authenticates():
    node, admin = certificate_extensions("node"), certificate_extensions("admin")
    assert "subjectAltName=IP:127.0.0.1" in node and "serverAuth,clientAuth" in node
    assert "subjectAltName" not in admin and "extendedKeyUsage=clientAuth" in admin
    assert all("CA:FALSE" in text for text in (node, admin))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_certificates_carry_the_configured_names_and_the_ca_key_is_gone(tmp_path: Path):
    tls, private = tmp_path / "tls", tmp_path / "private"
    tls.mkdir()
    private.mkdir()
    make_certificates(tls, private)
    assert sorted(p.name for p in tls.iterdir()) == ["ca.pem", "node-key.pem", "node.pem"]
    assert sorted(p.name for p in private.iterdir()) == ["admin-key.pem", "admin.pem"]
    assert (tls / "node-key.pem").read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8

    def show(cert: Path, *what: str) -> str:
        cmd = ["openssl", "x509", "-in", str(cert), "-noout", "-nameopt", "RFC2253", *what]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    assert show(tls / "node.pem", "-subject").strip() == f"subject={NODE_DN}"
    assert show(private / "admin.pem", "-subject").strip() == f"subject={ADMIN_DN}"
    assert "IP Address:127.0.0.1" in show(tls / "node.pem", "-text")
    verify = ["openssl", "verify", "-CAfile", str(tls / "ca.pem")]
    for cert in (tls / "node.pem", private / "admin.pem"):
        subprocess.run([*verify, str(cert)], capture_output=True, check=True)


def _donor_zip(path: Path, jars: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("opensearch-3.6.0/modules/rule-framework/plugin-descriptor.properties", "x")
        for name, data in jars.items():
            zf.writestr(f"opensearch-3.6.0/modules/rule-framework/{name}", data)
        zf.writestr("opensearch-3.6.0/modules/lang-painless/lang-painless-3.6.0.jar", b"p")
    return path


def test_rule_framework_comes_from_the_donor_zip_with_a_descriptor_for_our_version(
    tmp_path: Path, monkeypatch
):
    jars = {name: name.encode() for name in security._RULE_FRAMEWORK_JARS}
    pins = {name: hashlib.sha256(data).hexdigest() for name, data in jars.items()}
    monkeypatch.setattr(security, "_RULE_FRAMEWORK_JARS", pins)
    donor = _donor_zip(tmp_path / "donor.zip", jars)
    folder = install_rule_framework(tmp_path / "dist", donor, OPENSEARCH_VERSION, "21")
    assert sorted(p.name for p in folder.glob("*.jar")) == sorted(jars)
    props = _properties((folder / DESCRIPTOR).read_text())
    assert props["name"] == "rule-framework"
    assert props["classname"] == "org.opensearch.rule.RuleFrameworkPlugin"
    assert props["version"] == props["opensearch.version"] == OPENSEARCH_VERSION
    assert props["extended.plugins"] == ""


def test_rule_framework_jar_that_does_not_match_its_pin_is_refused(tmp_path: Path):
    jars = {name: b"not the published jar" for name in security._RULE_FRAMEWORK_JARS}
    donor = _donor_zip(tmp_path / "donor.zip", jars)
    with pytest.raises(EngineError, match="does not match its pinned SHA-256"):
        install_rule_framework(tmp_path / "dist", donor, OPENSEARCH_VERSION, "21")


def test_every_security_artifact_is_pinned_and_other_versions_are_refused():
    artifacts = security_artifacts(OPENSEARCH_VERSION)
    assert [a.coordinate for a in artifacts] == [
        "org.opensearch.plugin:opensearch-security:3.4.0.0:zip",
        "org.opensearch.distribution.integ-test-zip:opensearch:3.6.0:zip",
    ]
    assert all(a.sha256 and len(a.sha256) == 64 for a in artifacts)
    with pytest.raises(ConfigError, match="security plugin"):
        security_artifacts("3.5.0")


def test_secured_node_has_its_own_distribution_and_https(tmp_path: Path):
    plain = ManagedNode(home=tmp_path, port=9290)
    secured = ManagedNode(home=tmp_path, port=9290, secure=True)
    assert secured.url == "https://127.0.0.1:9290" and plain.url == "http://127.0.0.1:9290"
    assert secured.dist_dir.name == f"opensearch-{OPENSEARCH_VERSION}-secure"
    assert secured.dist_dir != plain.dist_dir
    with pytest.raises(ConfigError, match="cluster of one"):
        ManagedNode(home=tmp_path, port=9290, secure=True, seed_ports=(9290, 9291))


def test_plain_start_of_a_node_set_up_secured_is_refused(tmp_path: Path):
    node = ManagedNode(home=tmp_path, port=9290)
    node.security.credentials.mkdir(parents=True)
    with pytest.raises(EngineError, match="--secure"):
        node.start(timeout=1)


def test_status_says_how_to_connect_without_the_password(tmp_path: Path):
    status = NodeStatus(
        running=True, port=9290, pid=1, url="https://127.0.0.1:9290", log="l", version="3.4.0",
        java="21", home=str(tmp_path), secure=True, ca_certs="/n/tls/ca.pem",
        credentials="/n/credentials",
    )  # fmt: skip
    text = status.describe()
    assert "export OPENSEARCH_URL=https://127.0.0.1:9290 OPENSEARCH_CA_CERTS=/n/tls/ca.pem" in text
    assert 'OPENSEARCH_PASSWORD="$(cat /n/credentials/admin.password)"' in text
    assert "reader (read-only)" in text
