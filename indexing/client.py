"""Connecting to OpenSearch, with one-line errors for the usual ways it goes wrong."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from sparse_mm.errors import EngineError

DEFAULT_URL = "http://localhost:9200"


@dataclass(frozen=True)
class ConnectionOptions:
    """Where the engine is and how to talk to it. `url` defaults to `$OPENSEARCH_URL`."""

    url: str = field(default_factory=lambda: os.environ.get("OPENSEARCH_URL", DEFAULT_URL))
    timeout: float = 60.0
    max_retries: int = 3


def connect(options: ConnectionOptions | None = None, *, check: bool = True):
    """An `opensearchpy.OpenSearch` client; with `check`, verify the engine answers."""
    from opensearchpy import OpenSearch
    from opensearchpy.exceptions import ConnectionError as OSConnectionError
    from opensearchpy.exceptions import TransportError

    options = options or ConnectionOptions()
    client = OpenSearch(
        hosts=[options.url],
        timeout=options.timeout,
        max_retries=options.max_retries,
        retry_on_timeout=True,
        http_compress=False,
    )
    if check:
        try:
            client.info()
        except OSConnectionError as exc:
            raise EngineError(
                f"cannot reach OpenSearch at {options.url}: start one with "
                "`sparse-mm opensearch start` or `docker compose up -d`, or pass --url"
            ) from exc
        except TransportError as exc:
            raise EngineError(f"OpenSearch at {options.url} answered {exc.status_code}") from exc
    return client
