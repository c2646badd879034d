"""sparse-mm against a managed node running the real OpenSearch security plugin
(`sparse-mm opensearch start --secure`): HTTPS with the node's own CA, basic auth, an admin
who ingests and a read-only user who queries but cannot write.

The node has its own port (9290-9299) and a fresh folder under the shared engine home, so the
secured distribution is assembled once and reused by later runs; the node is stopped and its
folder removed at the end.
"""

from __future__ import annotations

import logging
import os
import shutil

import pytest
from click.testing import CliRunner

from indexing.client import ConnectionOptions
from indexing.engine import connect_client as connect
from indexing.opensearch.node import ManagedNode
from sparse_mm.cli import main
from sparse_mm.errors import EngineError
from tests.cli_run import URL_NOTE, error_lines
from tests.engine.local_nodes import free_ports

pytestmark = pytest.mark.engine
PORTS = range(9290, 9300)


@pytest.fixture(scope="module")
def node(java):
    (port,) = free_ports(1, PORTS)
    node = ManagedNode(port=port, heap="512m", secure=True)
    shutil.rmtree(node.node_dir, ignore_errors=True)  # new certificates and passwords
    try:
        node.start(timeout=240)
    except EngineError as exc:
        if os.environ.get("SPARSE_MM_REQUIRE_ENGINE", "") not in ("", "0", "false"):
            raise
        pytest.skip(f"cannot start a secured managed node: {exc}")
    try:
        yield node
    finally:
        node.stop()
        shutil.rmtree(node.node_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def passwords(node):
    return {user: node.security.read_password(user) for user in ("admin", "reader")}


@pytest.fixture(scope="module")
def admin_client(node, passwords):
    options = ConnectionOptions(
        url=node.url, user="admin", password=passwords["admin"], ca_certs=str(node.security.ca)
    )
    return connect(options)


def run(args, env):
    result = CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)
    return result, result.stdout + result.stderr


def _env(node, user, password=None):
    env = {"OPENSEARCH_URL": node.url, "OPENSEARCH_CA_CERTS": str(node.security.ca)}
    env["OPENSEARCH_USER"] = user
    if password is not None:
        env["OPENSEARCH_PASSWORD"] = password
    return env


def _query(name, model, *extra):
    return ["query", "a dog on the beach", "--index", name, "--model", model.path, "--json", *extra]


def _one_line(text):
    """One line says what went wrong (the URL rule's note on where the engine is aside)."""
    return len(error_lines(text)) == 1


@pytest.fixture(scope="module")
def indexed(node, corpus, trained_model, admin_client):
    """An index ingested by the admin through the CLI, the password from its 0600 file."""
    name = "secured"
    args = ["ingest", "--index", name, "--model", trained_model.path, "--data", corpus,
            "--password-file", node.security.password_file("admin")]  # fmt: skip
    result, output = run(args, _env(node, "admin"))
    assert result.exit_code == 0, output
    assert "failed 0" in output
    yield name, output
    admin_client.indices.delete(index=name, ignore_unavailable=True)


def test_node_runs_the_security_plugin_over_https(node, admin_client):
    assert node.url.startswith("https://")
    plugins = {p["component"] for p in admin_client.cat.plugins(format="json")}
    assert {"opensearch-security", "opensearch-knn"} <= plugins
    status = node.status()
    assert status.running and status.secure and status.ca_certs == str(node.security.ca)
    text = status.describe()
    assert "OPENSEARCH_CA_CERTS=" in text and "admin.password" in text
    for user in ("admin", "reader"):
        mode = node.security.password_file(user).stat().st_mode & 0o777
        assert mode == 0o600
        assert node.security.read_password(user) not in text


def test_admin_ingests_and_queries(node, indexed, trained_model, passwords):
    name, _ = indexed
    result, output = run(_query(name, trained_model), _env(node, "admin", passwords["admin"]))
    assert result.exit_code == 0, output
    assert '"hits"' in result.stdout and '"score"' in result.stdout


def test_verification_is_on_by_default(node, indexed, trained_model, passwords):
    name, _ = indexed
    env = _env(node, "reader", passwords["reader"])
    del env["OPENSEARCH_CA_CERTS"]
    result, output = run(_query(name, trained_model), env)
    assert result.exit_code != 0 and _one_line(result.stderr)
    assert f"TLS with {node.url} failed" in result.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr and "--ca-certs" in result.stderr
    assert passwords["reader"] not in output


def test_wrong_password_one_line_401_never_echoed(node, indexed, trained_model, caplog):
    name, _ = indexed
    wrong = "not-the-Password-42"
    caplog.set_level(logging.DEBUG)
    result, output = run(_query(name, trained_model), _env(node, "reader", wrong))
    assert result.exit_code != 0
    assert result.stderr.strip() == (
        f"error: OpenSearch at {node.url} refused the credentials (401, user 'reader'): set "
        "OPENSEARCH_USER and OPENSEARCH_PASSWORD (or --password-file)"
    )
    assert wrong not in output + caplog.text


def test_reader_queries_but_cannot_ingest(node, indexed, corpus, trained_model, passwords,
                                          admin_client, caplog):  # fmt: skip
    name, _ = indexed
    caplog.set_level(logging.DEBUG)
    env = _env(node, "reader", passwords["reader"])
    result, output = run(_query(name, trained_model), env)
    assert result.exit_code == 0, output
    assert '"hits"' in result.stdout
    before = admin_client.count(index=name)["count"]
    for index, split in ((name, "val"), ("secured-new", "test")):
        args = ["ingest", "--index", index, "--split", split,
                "--model", trained_model.path, "--data", corpus]  # fmt: skip
        result, output = run(args, env)
        assert result.exit_code != 0
        assert _one_line(result.stderr), result.stderr
        note, error = result.stderr.strip().splitlines()
        assert URL_NOTE.match(note) and node.url in note and "$OPENSEARCH_URL" in note
        assert error.startswith("error: OpenSearch denied this operation to the user (403)")
    admin_client.indices.refresh(index=name)
    assert admin_client.count(index=name)["count"] == before  # nothing partial
    assert not admin_client.indices.exists(index="secured-new")
    for password in passwords.values():
        assert password not in output + caplog.text


def test_no_password_in_outputs_or_node_logs(node, indexed, passwords):
    _, ingest_output = indexed
    logs = [p for p in (node.node_dir / "logs").rglob("*") if p.is_file()]
    assert logs
    texts = [ingest_output, node.status().describe()]
    texts += [p.read_text(errors="replace") for p in logs]
    for password in passwords.values():
        assert not any(password in text for text in texts)
