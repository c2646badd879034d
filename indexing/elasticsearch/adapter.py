"""Elasticsearch behind the engine interface (indexing/engine.py), with the official client.

Round trips: dense 1, sparse 1, hybrid 2 (candidates, then their exact scores:
indexing/elasticsearch/queries.py). Engine assets: an index template like OpenSearch's; no
stored search template, because the hybrid query takes two requests whose second depends on
the first's hits (and the minimal distribution has no mustache): `template_request` gives both
bodies instead, for any client to send.
"""

from __future__ import annotations

import contextlib
import json
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
from indexing.layout import DENSE_FIELD, IndexSettings
from indexing.query_terms import DENSE_EF_SEARCH, model_score, window_of
from indexing.registry import EngineSpec
from sparse_mm.errors import ConfigError, EngineError

SPEC = EngineSpec(
    name="elasticsearch",
    label="Elasticsearch",
    libraries=("elasticsearch",),
    client_module="indexing.elasticsearch.client",
    default_port=9201,
    port_variable="SPARSE_MM_ES_PORT",
    url_variable="ELASTICSEARCH_URL",
    user_variable="ELASTICSEARCH_USER",
    password_variable="ELASTICSEARCH_PASSWORD",
    ca_variable="ELASTICSEARCH_CA_CERTS",
    home_variable="SPARSE_MM_ELASTICSEARCH_HOME",
    node="indexing.elasticsearch.node:ElasticsearchNode",
    node_summary="Run a real local Elasticsearch node (no Docker needed): the minimal "
    "distribution from Maven Central, single node, security off, on 127.0.0.1.",
    image_variable="SPARSE_MM_ELASTICSEARCH_IMAGE",
    compose_service="elasticsearch",
    container="testcontainers.community.elasticsearch:ElasticSearchContainer",
    stored_template=False,
    one_request_hybrid=False,
    query_profile=False,
    knn_searches_ef_search=False,
    container_env=(("ES_JAVA_OPTS", "-Xms1g -Xmx1g"), ("discovery.type", "single-node")),
    container_health_path="/_cluster/health",
)

ASSETS_VERSION = 1
_PRIORITY = 500
NO_SEARCH_TEMPLATE = "none (hybrid takes two requests: see `sparse-mm query --template-request`)"


class ElasticsearchEngine(Engine):
    spec = SPEC

    def __init__(self, client) -> None:
        super().__init__(client)
        self._one_request: dict[str, tuple[bool, str]] = {}  # index -> (available, why)

    # -------------------------------------------------------------- capabilities
    def one_request(self, index: str) -> tuple[bool, str]:
        """Whether this node has the exact `dense_vector` query (Elasticsearch 9.6+) and it
        scores like the knn query, so that the hybrid takes one request; (available, why),
        decided once per index (a validate request, then one document scored both ways)."""
        if index not in self._one_request:
            decided = _probe_dense_vector_query(self, index)
            if decided is None:  # nothing to check against yet: ask again next time
                return False, "no document to check the dense_vector query's scores against"
            self._one_request[index] = decided
        return self._one_request[index]

    def capabilities(self, index: str) -> dict:
        available, why = self.one_request(index)
        return {"one_request_hybrid": {"available": available, "why": why}}

    def version(self) -> str:
        """From the node's info (the minimal distribution has no `GET /`)."""
        nodes = self.client.nodes.info(node_id="_local", metric="_none")["nodes"]
        return next(iter(nodes.values()))["version"]

    def address(self) -> str:
        try:
            node = self.client.transport.node_pool.all()[0].config
            return f"{node.host}:{node.port}"
        except (AttributeError, IndexError, TypeError):
            return "its address"

    @property
    def connection_errors(self) -> tuple[type[BaseException], ...]:
        from elasticsearch import ConnectionError as ESConnectionError
        from elasticsearch import ConnectionTimeout

        return (ESConnectionError, ConnectionTimeout)  # siblings in elastic_transport

    def without_retries(self) -> ElasticsearchEngine:
        return ElasticsearchEngine(self.client.options(max_retries=0))

    # -------------------------------------------------------------- indices
    def wait_for_health(self, name: str, status: str = "green", seconds: float = 60.0) -> None:
        """elasticsearch-py: the request's timeout through .options()."""
        self.client.options(request_timeout=seconds + 10).cluster.health(
            index=name, wait_for_status=status, timeout=f"{seconds:g}s"
        )

    def index_body(self, dense_dim: int, settings: IndexSettings, meta: dict | None) -> dict:
        from indexing.elasticsearch.mapping import index_body

        return index_body(dense_dim, settings, meta)

    def request_errors(self) -> tuple[type[BaseException], type[BaseException]]:
        from elasticsearch import BadRequestError, NotFoundError

        return BadRequestError, NotFoundError

    def root_cause(self, exc: BaseException) -> str:
        return error_reason(getattr(exc, "body", None), str(getattr(exc, "message", exc)))

    def dense_dim(self, properties: Mapping) -> int | None:
        return properties.get(DENSE_FIELD, {}).get("dims")

    def hnsw_parameters(self, properties: Mapping) -> tuple[int, int] | None:
        options = properties.get(DENSE_FIELD, {}).get("index_options", {})
        return (options["m"], options["ef_construction"]) if "m" in options else None

    # -------------------------------------------------------------- documents
    def bulk(self, actions, *, max_chunk_bytes: int, request_timeout: float | None):
        """The client's streaming_bulk turns an HTTP error of the whole request into failed
        items, but lets a lost connection or a timeout escape: those become failed items with
        no status here too, as opensearch-py's helper makes them."""
        from elasticsearch.helpers import streaming_bulk

        client = self.client
        if request_timeout is not None:
            client = client.options(request_timeout=request_timeout)
        settled: set[str] = set()
        try:
            for ok, item in streaming_bulk(
                client,
                actions,
                chunk_size=len(actions),
                max_chunk_bytes=max_chunk_bytes,
                max_retries=0,
                raise_on_error=False,
                raise_on_exception=False,
                yield_ok=True,
            ):
                settled.add(next(iter(item.values())).get("_id"))
                yield ok, item
        except self.connection_errors as exc:
            for action in actions:
                if action["_id"] not in settled:
                    outcome = {"_id": action["_id"], "status": "N/A", "exception": exc}
                    yield False, {action.get("_op_type", "index"): outcome}

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
        from indexing.elasticsearch import queries as q

        fetch = fetched(options, {"includes": source, "exclude_vectors": False})
        profiles: list = []

        def send(target: str, body: dict) -> dict:
            if options.profile:
                body = {**body, "profile": True}
            response = self._search(target, body)
            if options.profile:
                profiles.append(response["profile"])
            return response

        filters = options.filter.clauses() if options.filter else None
        if options.mode == "sparse":
            body = q.sparse_query(terms, k=options.k, filters=filters)
            return self._hits(send(index, {**body, **fetch}), "sparse", w1, profiles)
        if options.mode not in ("dense", "hybrid"):
            raise ConfigError(f"unknown mode {options.mode!r}; expected hybrid, sparse or dense")
        if options.mode == "dense" and not options.exact:
            candidates = options.ef_search or DENSE_EF_SEARCH
            body = q.dense_query(dense, k=options.k, num_candidates=candidates, filters=filters)
            return self._hits(send(index, {**body, **fetch}), "dense", w1, profiles)
        # dense exact: the exact step with w1 = 0.5 and no terms scores (1 + cos) / 2
        hybrid = options.mode == "hybrid"
        w1, w2, terms = (w1, w2, terms) if hybrid else (0.5, 1.0, {})
        window, knn_k = window_of(options)
        candidates = {
            "w1": w1,
            "w2": w2,
            "window": window,
            "num_candidates": options.ef_search,
            "filters": filters,
            "knn_k": knn_k,
        }
        if options.exact:
            # a query sparse-mm refuses (zero vector, bad weights) is refused before the ids
            # are fetched: build step 2's body, for no ids, first
            q.exact_query(dense, terms, [], w1=w1, w2=w2, k=options.k)
            matching = self.count(index, options.filter.query() if filters else None)
            first = send(index, q.all_ids_query(matching, filters))
        elif hybrid and self.one_request(index)[0]:
            body = q.one_request_hybrid(dense, terms, k=options.k, **candidates)
            return self._hits(send(index, {**body, **fetch}), "hybrid", w1, profiles)
        else:
            body = q.candidates_query(dense, terms, **candidates)
            first = send(index, body)
        ids = [str(h["fields"]["id"][0]) for h in first["hits"]["hits"]]
        if not ids:
            return EngineResult([], first["took"], 1, profiles)
        # step 2 asks the index that answered step 1: an alias that moved in between (a new
        # index swapped in) must not mix the old index's candidates with the new one's scores
        answered = {h["_index"] for h in first["hits"]["hits"]}
        target = answered.pop() if len(answered) == 1 else index
        body = {**q.exact_query(dense, terms, ids, w1=w1, w2=w2, k=options.k), **fetch}
        result = self._hits(send(target, body), options.mode, w1, profiles)
        result.took_ms += first["took"]
        result.round_trips = 2
        return result

    @staticmethod
    def _hits(response: dict, mode: str, w1: float, profiles: list) -> EngineResult:
        hits = [
            EngineHit(
                str(h["_id"]),
                model_score(h["_score"], mode, w1),
                hit_source(h),
                h["_index"],
            )
            for h in response["hits"]["hits"]
        ]
        return EngineResult(hits, response["took"], 1, profiles)

    def _search(self, index: str, body: dict) -> dict:
        from elasticsearch import BadRequestError, NotFoundError

        try:
            return self.client.search(index=index, body=body).body
        except NotFoundError as exc:
            raise self.missing_index(index) from exc
        except BadRequestError as exc:
            raise EngineError(f"Elasticsearch rejected the query: {self.root_cause(exc)}") from exc

    # -------------------------------------------------------------- assets
    def install_assets(self, index, dense_dim, settings, w1, w2, meta) -> AssetsReport:
        """The index template `sparse-mm-<index>` (the settings and mapping ingest creates)."""
        from elasticsearch import NotFoundError

        from indexing.elasticsearch.mapping import index_body

        wanted = {
            "index_patterns": [index],
            "priority": _PRIORITY,
            "version": ASSETS_VERSION,
            "template": index_body(dense_dim, settings, meta),
            "_meta": {"managed_by": "sparse-mm", "w1": w1, "w2": w2},
        }
        name = f"sparse-mm-{index}"
        try:
            found = self.client.indices.get_index_template(name=name)["index_templates"][0]
            current = found["index_template"]
        except NotFoundError:
            current = None
        if current is None:
            state = "created"
        elif isinstance(current.get("version"), int) and current["version"] > ASSETS_VERSION:
            raise EngineError(
                f"index template {name} has version {current['version']}, written by a newer "
                f"sparse-mm (this one writes {ASSETS_VERSION}); upgrade sparse-mm or use "
                "another --index"
            )
        else:
            same = (
                current.get("version") == ASSETS_VERSION
                and current.get("_meta") == wanted["_meta"]
                and _same_json(
                    current.get("template", {}).get("mappings"), wanted["template"]["mappings"]
                )
            )
            state = "unchanged" if same else "updated"
        if state != "unchanged":
            self.client.indices.put_index_template(name=name, body=wanted)
        return AssetsReport(state, NO_SEARCH_TEMPLATE, ASSETS_VERSION)

    def delete_assets(self, index: str) -> None:
        from elasticsearch import NotFoundError

        with contextlib.suppress(NotFoundError):
            self.client.indices.delete_index_template(name=f"sparse-mm-{index}")

    def template_request(self, index, dense, terms, *, k, window, knn_k, w1, w2) -> dict:
        from indexing.elasticsearch import queries as q

        window = max(window, k)
        path = f"/{index}/_search"
        second = q.exact_query(
            dense,
            terms,
            ["<fields.id of each hit of request 1>"],
            w1=w1,
            w2=w2,
            k=k,
            at_most=window,
        )
        return {
            "engine": "elasticsearch",
            "note": "Elasticsearch stores no search template for this query: send request 1, "
            "put the ids of its hits (each hit's fields.id) into both 'ids' lists of request 2 "
            "and send it; the "
            f"integrated score of a hit of request 2 is its _score - {w1}",
            "requests": [
                {
                    "method": "POST",
                    "path": path,
                    "body": q.candidates_query(
                        dense, terms, w1=w1, w2=w2, window=window, knn_k=knn_k
                    ),
                },
                {"method": "POST", "path": path, "body": second},
            ],
        }


def _same_json(a, b) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _probe_dense_vector_query(engine: ElasticsearchEngine, index: str) -> tuple[bool, str] | None:
    """(available, why) for `ElasticsearchEngine.one_request`; None when the index has no
    document yet to check the scores with."""
    from indexing.elasticsearch import queries as q

    mappings = engine.concrete_mappings(index)
    if not mappings:
        return None
    dims = engine.dense_dim(next(iter(mappings.values())).get("properties", {}))
    probe = [1.0] + [0.0] * (int(dims or 1) - 1)
    answer = engine.client.indices.validate_query(
        index=index, body={"query": q.dense_vector_clause(probe)}, explain=True
    )
    if not answer.get("valid"):
        errors = [e.get("error", "") for e in answer.get("explanations", []) if e.get("error")]
        reason = (errors[0] if errors else answer.get("error") or "not valid").splitlines()[0]
        reason = reason.split(";")[0].split("Exception: ", 1)[-1]  # the Java class left out
        return False, f"no exact dense_vector query on {engine.version()} ({reason[:160]})"
    first = engine._search(index, {"size": 1, **q.IDS_ONLY, "query": {"match_all": {}}})
    first = first["hits"]["hits"]
    if not first:
        return None
    doc = str(first[0]["fields"]["id"][0])
    only = [{"ids": {"values": [doc]}}]
    knn = engine._search(index, {"size": 1, "query": q._knn(probe, 1, 1, ids=[doc])})
    exact_query = {"bool": {"must": [q.dense_vector_clause(probe)], "filter": only}}
    exact = engine._search(index, {"size": 1, "query": exact_query})
    scores = [r["hits"]["hits"][0]["_score"] for r in (knn, exact) if r["hits"]["hits"]]
    if len(scores) != 2 or abs(scores[0] - scores[1]) > 1e-6:
        return False, f"the dense_vector query scores {scores[1:]} where knn scores {scores[:1]}"
    return True, f"the exact dense_vector query, checked against knn on document {doc!r}"
