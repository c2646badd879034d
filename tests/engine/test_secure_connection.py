"""sparse-mm's connection options against an HTTPS endpoint with basic auth and API keys.

The endpoint is a TLS reverse proxy in front of the real node, with certificates generated
here by openssl: it checks credentials (a reader, a writer and an API key) and refuses writes
to the reader, as a read-only role would. What this tests is the client side, including what the
security plugin's basic auth does not offer (API-key headers): TLS verification on by default,
the CA bundle, credentials from the environment or a file, clear one-line errors, and no
credential in any output or log, through each engine's client (OpenSearch's and
Elasticsearch's). test_security_plugin.py does the same against OpenSearch's real plugin on a
secured managed node.
"""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from indexing.registry import engine_spec, specs
from sparse_mm.cli import main
from tests.engine.proxy import Answer, forwarding_proxy
from tests.engines import each_engine  # noqa: F401  (every test here runs on both engines)

PASSWORDS = {"reader": "r3ad-0nly-Pw", "writer": "wr1te-Pw"}
API_KEY = "k3y-abc123"


def _basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()


def _certificates(folder):
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed to generate the test certificates"

    def run(*args):
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=folder)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    (folder / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem")  # fmt: skip
    return folder / "ca.pem", folder / "server.pem", folder / "server.key"


@pytest.fixture(scope="module")
def secured(engine, tmp_path_factory):
    """(https URL, CA bundle path) of a TLS + auth endpoint in front of the engine."""
    folder = tmp_path_factory.mktemp("tls")
    ca, cert, key = _certificates(folder)

    def check_credentials(request) -> Answer:
        auth = request.headers.get("Authorization", "")
        user = next((u for u in PASSWORDS if auth == _basic(u)), None)
        if auth == f"ApiKey {API_KEY}":
            user = "writer"
        if user is None:
            return 401, b'{"error":"unauthorized"}'
        writes = request.command in ("PUT", "DELETE") or "_bulk" in request.path
        if user == "reader" and writes:
            return 403, b'{"error":{"type":"security_exception"},"status":403}'
        return None

    with forwarding_proxy(engine.url, check_credentials, tls=(cert, key)) as url:
        yield url, ca


@pytest.fixture(scope="module")
def indexed(engine, corpus, trained_model):
    import uuid

    from indexing.ingest import IngestOptions, ingest, source_from_dataset

    name = f"test-tls-{uuid.uuid4().hex[:8]}"
    source = source_from_dataset(corpus, "test")
    ingest(engine.client, trained_model, source, IngestOptions(index=name), progress=False)
    yield name
    engine.client.indices.delete(index=name, ignore_unavailable=True)


def run(args, env):
    result = CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)
    return result, result.stdout + result.stderr


def _query(engine, url, name, model, *extra):
    return ["query", "a dog on the beach", "--engine", engine.name, "--url", url, "--index", name,
            "--model", model.path, "--json", *extra]  # fmt: skip


def _credentials(engine, user: str, password: str) -> dict[str, str]:
    """The environment that gives `engine` these credentials: its own variables
    (OPENSEARCH_USER..., ELASTICSEARCH_USER...), with the other engines' set to a wrong user,
    which must be ignored."""
    env = {}
    for spec in specs():
        mine = spec.name == engine.name
        env[spec.user_variable] = user if mine else "someone-else"
        env[spec.password_variable] = password if mine else "not-the-password"
    return env


def _no_secret(text):
    for secret in (*PASSWORDS.values(), API_KEY):
        assert secret not in text


def test_verification_is_on_by_default(engine, secured, indexed, trained_model):
    url, _ = secured
    env = _credentials(engine, "reader", PASSWORDS["reader"])
    result, output = run(_query(engine, url, indexed, trained_model), env)
    assert result.exit_code != 0
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert f"TLS with {url} failed" in result.stderr and "--ca-certs" in result.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr
    _no_secret(output)


def test_reader_queries_with_the_ca_bundle(engine, secured, indexed, trained_model):
    url, ca = secured
    env = _credentials(engine, "reader", PASSWORDS["reader"])
    result, output = run(_query(engine, url, indexed, trained_model, "--ca-certs", ca), env)
    assert result.exit_code == 0, output
    assert '"hits"' in result.stdout and '"score"' in result.stdout
    _no_secret(output)


def test_password_file_and_api_key(engine, secured, indexed, trained_model, tmp_path):
    url, ca = secured
    secret = tmp_path / "password"
    secret.write_text(PASSWORDS["reader"] + "\n")
    args = _query(engine, url, indexed, trained_model, "--ca-certs", ca, "--password-file", secret)
    wrong = {engine_spec(engine.name).password_variable: "wrong"}
    result, output = run([*args, "--user", "reader"], wrong)
    assert result.exit_code == 0, output  # the file wins over the environment
    keyed = _query(engine, url, indexed, trained_model, "--ca-certs", ca)
    result, output = run([*keyed, "--header", f"Authorization: ApiKey {API_KEY}"], {})
    assert result.exit_code == 0, output
    _no_secret(output)


def test_wrong_credentials_one_line_and_never_echoed(
    engine, secured, indexed, trained_model, caplog
):
    url, ca = secured
    wrong = "not-" + PASSWORDS["reader"]
    caplog.set_level(logging.DEBUG)
    env = _credentials(engine, "reader", wrong)
    spec = engine_spec(engine.name)
    result, output = run(_query(engine, url, indexed, trained_model, "--ca-certs", ca), env)
    assert result.exit_code != 0
    assert result.stderr.strip() == (
        f"error: {engine.label} at {url} refused the credentials (401, user 'reader'): set "
        f"{spec.user_variable} and {spec.password_variable} (or --password-file)"
    )
    for text in (output, caplog.text):
        assert wrong not in text
        _no_secret(text)
    # a URL carrying credentials is shown without them
    inline = url.replace("https://", f"https://reader:{wrong}@")
    result, output = run(_query(engine, inline, indexed, trained_model, "--ca-certs", ca), {})
    assert result.exit_code != 0 and wrong not in output + caplog.text


def test_reader_cannot_ingest(secured, engine, corpus, trained_model, index_name):
    url, ca = secured
    env = _credentials(engine, "reader", PASSWORDS["reader"])
    args = ["ingest", "--engine", engine.name, "--url", url, "--ca-certs", ca,
            "--index", index_name, "--model", trained_model.path, "--data", corpus]  # fmt: skip
    result, output = run(args, env)
    assert result.exit_code != 0
    assert result.stderr.strip().startswith(f"error: {engine.label} denied this operation")
    assert "403" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not engine.client.indices.exists(index=index_name)
    _no_secret(output)
    writer = _credentials(engine, "writer", PASSWORDS["writer"])
    result, output = run([*args, "--split", "val"], writer)
    assert result.exit_code == 0, output
    engine.client.indices.refresh(index=index_name)
    assert engine.client.count(index=index_name)["count"] > 0
