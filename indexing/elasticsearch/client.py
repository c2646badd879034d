"""Connecting to Elasticsearch with the official `elasticsearch` client (the `elasticsearch`
extra), with the same one-line errors as OpenSearch's (indexing/client.py has the options).

The minimal distribution has no `GET /` (it answers 405), so a client's `info()` and `ping()`
fail there: the check asks `GET /_cluster/health`, which every distribution has.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from indexing.client import ConnectionOptions, plain_http_hint
from indexing.elasticsearch.adapter import SPEC
from sparse_mm.errors import ConfigError, EngineError


def _library():
    try:
        import elasticsearch
    except ImportError as exc:
        raise ConfigError(
            "--engine elasticsearch needs the Elasticsearch client: "
            "pip install 'sparse-mm[elasticsearch]'"
        ) from exc
    return elasticsearch


def connect(options: ConnectionOptions, *, check: bool = True):
    """An `elasticsearch.Elasticsearch` client; with `check`, verify the engine answers."""
    es = _library()
    if options.ca_certs is not None and not Path(options.ca_certs).is_file():
        raise ConfigError(f"the CA bundle {options.ca_certs} does not exist")
    extra: dict = {}
    if urlsplit(options.url).scheme == "https":
        extra = {"verify_certs": options.verify, "ssl_show_warn": False}
        if options.ca_certs:
            extra["ca_certs"] = options.ca_certs
    if options.user is not None:
        extra["basic_auth"] = (options.user, options.password or "")
    from elasticsearch.serializer import OrjsonSerializer

    client = es.Elasticsearch(
        hosts=[options.url],
        # orjson for request and response bodies (bulk bodies: about 15 times faster than the
        # standard library's json, the default; indexing/opensearch/client.py has the same).
        serializers={"application/json": OrjsonSerializer()},
        request_timeout=options.timeout,
        max_retries=options.max_retries,
        retry_on_timeout=True,
        http_compress=False,
        headers=dict(options.headers) or None,
        **extra,
    )
    if check:
        check_answers(client, options)
    return client


def check_answers(client, options: ConnectionOptions) -> None:
    es = _library()
    where = options.safe_url
    try:
        client.cluster.health()
    except es.SSLError as exc:
        if hint := plain_http_hint(options.url):
            raise EngineError(hint) from None
        raise EngineError(
            f"TLS with {where} failed ({_first_line(exc)}): pass --ca-certs with the CA bundle "
            "that signed the cluster's certificate"
        ) from None
    except (es.ConnectionError, es.ConnectionTimeout):
        raise EngineError(
            f"cannot reach Elasticsearch at {where}: start one with "
            "`sparse-mm elasticsearch start` or `docker compose --profile elasticsearch up -d`, "
            "or pass --url"
        ) from None
    except es.UnsupportedProductError:
        raise EngineError(
            f"the server at {where} is not Elasticsearch (OpenSearch? then use --engine opensearch)"
        ) from None
    except es.AuthenticationException:
        who = f"user {options.user!r}" if options.user else "no credentials"
        raise EngineError(
            f"Elasticsearch at {where} refused the credentials (401, {who}): set "
            f"{SPEC.user_variable} and {SPEC.password_variable} (or --password-file)"
        ) from None
    except es.AuthorizationException:
        raise EngineError(
            f"Elasticsearch at {where} denied user {options.user!r} access (403)"
        ) from None
    except es.ApiError as exc:
        raise EngineError(f"Elasticsearch at {where} answered {exc.meta.status}") from None


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0][:200] if text else "no detail"
