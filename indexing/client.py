"""Connecting to OpenSearch, with one-line errors for the usual ways it goes wrong.

Secured clusters: an `https://` URL turns TLS on, with certificate verification on unless
`verify=False`; `ca_certs` names the CA bundle that signed the cluster's certificate. Basic
auth takes `user` and `password` (the CLI reads them from `$OPENSEARCH_USER` and
`$OPENSEARCH_PASSWORD` or `--password-file`, never from the command line, where other users
could see them in the process list); `headers` adds request headers, e.g. an API key's
`Authorization`. Credentials never appear in errors: URLs are shown without their user-info,
and the options' repr hides the password and header values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from sparse_mm.errors import ConfigError, EngineError

DEFAULT_URL = "http://localhost:9200"
DEFAULT_TIMEOUT = 60.0  # seconds per request


@dataclass(frozen=True)
class ConnectionOptions:
    """Where the engine is and how to talk to it. `url` defaults to `$OPENSEARCH_URL`."""

    url: str = field(default_factory=lambda: os.environ.get("OPENSEARCH_URL", DEFAULT_URL))
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = 3
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_certs: str | None = None
    verify: bool = True
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def safe_url(self) -> str:
        """The URL without any user-info, for messages."""
        return redact_url(self.url)


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def read_password(password_file: Path | None) -> str | None:
    """The password from `password_file` (first line) or `$OPENSEARCH_PASSWORD`."""
    if password_file is None:
        return os.environ.get("OPENSEARCH_PASSWORD") or None
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


def connect(options: ConnectionOptions | None = None, *, check: bool = True):
    """An `opensearchpy.OpenSearch` client; with `check`, verify the engine answers."""
    from opensearchpy import OpenSearch
    from opensearchpy.exceptions import (
        AuthenticationException,
        AuthorizationException,
        SSLError,
        TransportError,
    )
    from opensearchpy.exceptions import ConnectionError as OSConnectionError

    options = options or ConnectionOptions()
    if options.ca_certs is not None and not Path(options.ca_certs).is_file():
        raise ConfigError(f"the CA bundle {options.ca_certs} does not exist")
    tls = urlsplit(options.url).scheme == "https"
    extra: dict = {}
    if tls:
        extra = {"use_ssl": True, "verify_certs": options.verify, "ssl_show_warn": False}
        if options.ca_certs:
            extra["ca_certs"] = options.ca_certs
    if options.user is not None:
        extra["http_auth"] = (options.user, options.password or "")
    client = OpenSearch(
        hosts=[options.url],
        timeout=options.timeout,
        max_retries=options.max_retries,
        retry_on_timeout=True,
        http_compress=False,
        headers=dict(options.headers) or None,
        **extra,
    )
    if check:
        where = options.safe_url
        try:
            client.info()
        except SSLError as exc:
            reason = _first_line(exc.info if isinstance(exc.info, str) else exc.error)
            raise EngineError(
                f"TLS with {where} failed ({reason}): pass --ca-certs with the CA bundle that "
                "signed the cluster's certificate"
            ) from None
        except OSConnectionError:
            raise EngineError(
                f"cannot reach OpenSearch at {where}: start one with "
                "`sparse-mm opensearch start` or `docker compose up -d`, or pass --url"
            ) from None
        except AuthenticationException:
            who = f"user {options.user!r}" if options.user else "no credentials"
            raise EngineError(
                f"OpenSearch at {where} refused the credentials (401, {who}): set "
                "OPENSEARCH_USER and OPENSEARCH_PASSWORD (or --password-file)"
            ) from None
        except AuthorizationException:
            raise EngineError(
                f"OpenSearch at {where} denied user {options.user!r} access (403)"
            ) from None
        except TransportError as exc:
            raise EngineError(f"OpenSearch at {where} answered {exc.status_code}") from None
    return client


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0][:200] if text else "no detail"
