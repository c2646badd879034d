"""OpenSearch behind the engine interface (indexing/engine.py), with `opensearch-py`.

Round trips: every mode is one search request; hybrid rescores its candidate window exactly
in the same request (indexing/opensearch/queries.py).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

from indexing.engine import (
    AssetsReport,
    Engine,
    EngineHit,
    EngineResult,
    error_reason,
    fetched,
    hit_source,
)
from indexing.layout import IndexSettings
from indexing.query_terms import DENSE_EF_SEARCH, model_score, window_of
from indexing.registry import EngineSpec
from sparse_mm.errors import ConfigError, EngineError

SPEC = EngineSpec(
    name="opensearch",
    label="OpenSearch",
    libraries=("opensearchpy",),
    client_module="indexing.opensearch.client",
    default_port=9200,
    port_variable="SPARSE_MM_PORT",
    url_variable="OPENSEARCH_URL",
    user_variable="OPENSEARCH_USER",
    password_variable="OPENSEARCH_PASSWORD",
    ca_variable="OPENSEARCH_CA_CERTS",
    home_variable="SPARSE_MM_HOME",
    node="indexing.opensearch.node:ManagedNode",
    node_summary="Run a real local OpenSearch node (no Docker needed), assembled from Maven "
    "Central.",
    image_variable="SPARSE_MM_OPENSEARCH_IMAGE",
    compose_service="opensearch",
    container="testcontainers.community.opensearch:OpenSearchContainer",
    stored_template=True,
    one_request_hybrid=True,
    query_profile=True,
    knn_searches_ef_search=True,
    container_kwargs=(("security_enabled", False),),
    container_env=(("OPENSEARCH_JAVA_OPTS", "-Xms1g -Xmx1g"),),
    node_flags=(
        (
            "secure",
            "Run the security plugin: HTTPS with a locally made CA, basic auth, users admin and "
            "reader (passwords generated into 0600 files; admin's from "
            "$OPENSEARCH_INITIAL_ADMIN_PASSWORD if set).",
        ),
    ),
)


class OpenSearchEngine(Engine):
    spec = SPEC

    def version(self) -> str:
        return self.client.info()["version"]["number"]

    def address(self) -> str:
        try:
            host = self.client.transport.hosts[0]
            return f"{host.get('host')}:{host.get('port')}"
        except (AttributeError, IndexError, TypeError):
            return "its address"

    @property
    def connection_errors(self) -> tuple[type[BaseException], ...]:
        from opensearchpy.exceptions import ConnectionError as OSConnectionError

        return (OSConnectionError,)  # ConnectionTimeout is a subclass

    def without_retries(self) -> OpenSearchEngine:
        """A shallow copy of the client with a transport of its own that shares the connection
        pool."""
        transport = getattr(self.client, "transport", None)
        if getattr(transport, "max_retries", 0) == 0:
            return self
        quiet = copy.copy(self.client)
        quiet.transport = copy.copy(transport)
        quiet.transport.max_retries = 0
        return OpenSearchEngine(quiet)

    # -------------------------------------------------------------- indices
    def wait_for_health(self, name: str, status: str = "green", seconds: float = 60.0) -> None:
        """opensearch-py: the request's timeout is an argument (`timeout` is the engine's)."""
        self.client.cluster.health(
            index=name,
            wait_for_status=status,
            timeout=f"{seconds:g}s",
            request_timeout=seconds + 10,
        )

    def index_body(self, dense_dim: int, settings: IndexSettings, meta: dict | None) -> dict:
        from indexing.opensearch.mapping import index_body

        return index_body(dense_dim, settings, meta)

    def request_errors(self) -> tuple[type[BaseException], type[BaseException]]:
        from opensearchpy.exceptions import NotFoundError, RequestError

        return RequestError, NotFoundError

    def root_cause(self, exc: BaseException) -> str:
        return error_reason(getattr(exc, "info", None), str(getattr(exc, "error", exc)))

    def dense_dim(self, properties: Mapping) -> int | None:
        from indexing.layout import DENSE_FIELD

        return properties.get(DENSE_FIELD, {}).get("dimension")

    def hnsw_parameters(self, properties: Mapping) -> tuple[int, int] | None:
        from indexing.layout import DENSE_FIELD

        params = properties.get(DENSE_FIELD, {}).get("method", {}).get("parameters", {})
        return (params["m"], params["ef_construction"]) if "m" in params else None

    # -------------------------------------------------------------- documents
    def bulk(self, actions, *, max_chunk_bytes: int, request_timeout: float | None):
        from opensearchpy.helpers import streaming_bulk

        extra = {} if request_timeout is None else {"request_timeout": request_timeout}
        return streaming_bulk(
            self.client,
            actions,
            chunk_size=len(actions),
            max_chunk_bytes=max_chunk_bytes,
            max_retries=0,
            raise_on_error=False,
            raise_on_exception=False,
            yield_ok=True,
            **extra,
        )

    # -------------------------------------------------------------- search
    def search(
        self,
        index: str,
        dense: Sequence[float],
        terms: Mapping[str, float],
        options,
        w1: float,
        w2: float,
        source: list[str],
    ) -> EngineResult:
        from opensearchpy.exceptions import NotFoundError, RequestError

        from indexing.opensearch.queries import dense_query, hybrid_query, sparse_query

        filters = options.filter.clauses() if options.filter else None
        if options.mode == "dense":
            ef_search = options.ef_search or DENSE_EF_SEARCH
            body = dense_query(dense, k=options.k, ef_search=ef_search, filters=filters)
            if options.exact:  # the hybrid script with w1 = 0.5 scores (1 + cos) / 2 too
                body = hybrid_query(
                    dense, {}, w1=0.5, w2=1.0, k=options.k, exact=True, filters=filters
                )
        elif options.mode == "sparse":
            body = sparse_query(terms, k=options.k, filters=filters)
        elif options.mode == "hybrid":
            window, knn_k = window_of(options)
            body = hybrid_query(
                dense,
                terms,
                w1=w1,
                w2=w2,
                k=options.k,
                window=window,
                ef_search=options.ef_search,
                exact=options.exact,
                filters=filters,
                knn_k=knn_k,
            )
        else:
            raise ConfigError(f"unknown mode {options.mode!r}; expected hybrid, sparse or dense")
        body.update(fetched(options, source))
        if options.profile:
            body["profile"] = True
        try:
            response = self.client.search(index=index, body=body)
        except NotFoundError as exc:
            raise self.missing_index(index) from exc
        except RequestError as exc:
            raise EngineError(f"OpenSearch rejected the query: {self.root_cause(exc)}") from exc
        hits = [
            EngineHit(
                str(h["_id"]),
                model_score(h["_score"], options.mode, w1),
                hit_source(h),
                h["_index"],
            )
            for h in response["hits"]["hits"]
        ]
        profiles = [response["profile"]] if options.profile else []
        return EngineResult(hits, response["took"], 1, profiles)

    # -------------------------------------------------------------- assets
    def install_assets(self, index, dense_dim, settings, w1, w2, meta) -> AssetsReport:
        from indexing.opensearch.assets import install_assets

        return install_assets(self.client, index, dense_dim, settings, w1, w2, meta)

    def install_alias_template(self, alias: str, w1: float, w2: float) -> str:
        from indexing.opensearch.assets import install_search_template

        return install_search_template(self.client, alias, w1, w2)

    def delete_assets(self, index: str) -> None:
        from indexing.opensearch.assets import delete_assets

        delete_assets(self.client, index)

    def template_request(self, index, dense, terms, *, k, window, knn_k, w1, w2) -> dict:
        """The stored template has the model's w1 and w2 built in."""
        from indexing.opensearch.assets import template_request

        return template_request(index, dense, terms, k=k, window=window, knn_k=knn_k)
