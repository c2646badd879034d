"""Connection options for any engine, with one-line errors for the usual ways they go wrong.

Secured clusters: an `https://` URL turns TLS on, with certificate verification on unless
`verify=False`; `ca_certs` names the CA bundle that signed the cluster's certificate. Basic
auth takes `user` and `password` (the CLI reads them from the engine's own variables,
`$OPENSEARCH_USER` and `$OPENSEARCH_PASSWORD`, `$ELASTICSEARCH_USER` and
`$ELASTICSEARCH_PASSWORD` (indexing/registry.py's `EngineSpec`), or `--password-file`, never
from the command line, where other users could see them in the process list); `headers` adds
request headers, e.g. an API key's `Authorization`. Credentials never appear in errors: URLs
are shown without their user-info, and the options' repr hides the password and header values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from sparse_mm.errors import ConfigError

DEFAULT_TIMEOUT = 60.0  # seconds per request


@dataclass(frozen=True)
class ConnectionOptions:
    """Where the engine is and how to talk to it. `url` defaults to the default engine's by
    the URL rule (indexing.registry.engine_url)."""

    url: str = field(default_factory=lambda: _default_url())
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = 3
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_certs: str | None = None
    verify: bool = True
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        check_url(self.url)

    @property
    def safe_url(self) -> str:
        """The URL without any user-info, for messages."""
        return redact_url(self.url)


def check_url(url: str) -> None:
    """A one-line ConfigError unless `url` is http(s)://host[:port][/path] with a numeric port."""
    shown = redact_url(url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"the engine URL {shown!r} must look like http://HOST:PORT or https://..."
        )
    try:
        parts.port  # noqa: B018 - urllib checks the port when it is read
    except ValueError:
        port = parts.netloc.rsplit("@", 1)[-1].rpartition(":")[2]
        raise ConfigError(
            f"the engine URL {shown!r} has the port {port!r}: a port is a number from 1 to 65535"
        ) from None


def plain_http_hint(url: str, timeout: float = 2.0) -> str | None:
    """When TLS to an https:// `url` failed: whether the server there answers plain HTTP (then
    the URL should start with http://); the hint to print, or None."""
    import socket

    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return None
    try:
        with socket.create_connection((parts.hostname, parts.port or 443), timeout) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\nHost: " + parts.hostname.encode() + b"\r\n\r\n")
            answer = sock.recv(16)
    except OSError:
        return None
    if not answer.startswith(b"HTTP/"):
        return None
    plain = urlunsplit(parts._replace(scheme="http"))
    return (
        f"the server at {redact_url(url)} speaks plain HTTP, not TLS: use --url {redact_url(plain)}"
    )


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _default_url() -> str:
    from indexing.registry import engine_url

    return engine_url(None, os.environ)


def read_password(password_file: Path | None, variable: str) -> str | None:
    """The password from `password_file` (first line), else from the environment variable
    `variable` (the engine's, e.g. `$ELASTICSEARCH_PASSWORD`)."""
    if password_file is None:
        return os.environ.get(variable) or None
    try:
        lines = Path(password_file).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the password file {password_file}: {exc.strerror}"
        ) from None
    if not lines or not lines[0]:
        raise ConfigError(f"the password file {password_file} is empty")
    return lines[0]


def parse_headers(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """'Name: value' strings -> (name, value) pairs."""
    pairs = []
    for value in values:
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            raise ConfigError(f"a header must look like 'Name: value', got {name.strip()!r}...")
        pairs.append((name.strip(), content.strip()))
    return tuple(pairs)
