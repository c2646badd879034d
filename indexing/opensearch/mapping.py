"""The OpenSearch index definition: a k-NN field for dense vectors, `rank_features` for term
weights. HNSW uses the Lucene engine, the only one in the Maven Central k-NN build (and not the
default since 2.18, so it is always named)."""

from __future__ import annotations

from indexing import layout
from indexing.layout import IndexSettings
from sparse_mm.errors import ConfigError


def index_body(dense_dim: int, settings: IndexSettings, meta: dict | None = None) -> dict:
    """The body of a create-index request. `meta` (model name, w1/w2, ...) goes into `_meta`."""
    if dense_dim < 1:
        raise ConfigError(f"dense dimension must be >= 1, got {dense_dim}")
    dense = {
        "type": "knn_vector",
        "dimension": dense_dim,
        "method": {
            "name": "hnsw",
            "engine": "lucene",
            "space_type": "cosinesimil",
            "parameters": {"m": settings.m, "ef_construction": settings.ef_construction},
        },
    }
    extra = {"knn": True, "knn.algo_param.ef_search": settings.ef_search}
    return layout.index_body(dense, {"type": "rank_features"}, settings, meta, extra)
