"""Connecting to OpenSearch with `opensearch-py`, with one-line errors for the usual ways it goes
wrong (indexing/client.py has the options and what they mean)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from indexing.client import ConnectionOptions, plain_http_hint
from indexing.opensearch.adapter import SPEC
from sparse_mm.errors import ConfigError, EngineError


def connect(options: ConnectionOptions, *, check: bool = True):
    """An `opensearchpy.OpenSearch` client; with `check`, verify the engine answers."""
    from opensearchpy import OpenSearch
    from opensearchpy.exceptions import (
        AuthenticationException,
        AuthorizationException,
        SSLError,
        TransportError,
    )
    from opensearchpy.exceptions import ConnectionError as OSConnectionError

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
        serializer=orjson_serializer(),
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
            if hint := plain_http_hint(options.url):
                raise EngineError(hint) from None
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
                f"{SPEC.user_variable} and {SPEC.password_variable} (or --password-file)"
            ) from None
        except AuthorizationException:
            raise EngineError(
                f"OpenSearch at {where} denied user {options.user!r} access (403)"
            ) from None
        except TransportError as exc:
            hint = ""
            if exc.status_code == 405:  # no GET /: Elasticsearch's minimal distribution
                hint = " (is it Elasticsearch? then pass --engine elasticsearch)"
            raise EngineError(f"OpenSearch at {where} answered {exc.status_code}{hint}") from None
    return client


def orjson_serializer():
    """opensearch-py's JSON serializer on orjson: a bulk body's documents (256 floats each)
    encode about 15 times faster than with the standard library's json, which the client
    uses by default and which alone would take most of a core at 2,000 documents a second.
    What orjson refuses (keys that are not strings, integers past 64 bits) falls back to the
    standard serializer; NaN never gets here (documents and queries are checked first)."""
    import orjson
    from opensearchpy.exceptions import SerializationError
    from opensearchpy.serializer import JSONSerializer

    class OrjsonSerializer(JSONSerializer):
        def dumps(self, data):
            if isinstance(data, (str, bytes)):
                return data
            try:
                return orjson.dumps(
                    data, default=self.default, option=orjson.OPT_SERIALIZE_NUMPY
                ).decode()
            except TypeError:
                return super().dumps(data)

        def loads(self, s):
            try:
                return orjson.loads(s)
            except orjson.JSONDecodeError as exc:
                raise SerializationError(s, exc) from exc

    return OrjsonSerializer()


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0][:200] if text else "no detail"
