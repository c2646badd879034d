"""The OpenSearch index definition: a k-NN field for dense vectors, `rank_features` for term
weights. HNSW uses the Lucene engine, the only one in the Maven Central k-NN build (and not the
default since 2.18, so it is always named)."""

from __future__ import annotations

from indexing.layout import DENSE_FIELD, MAPPING_VERSION, SPARSE_FIELD, IndexSettings
from sparse_mm.errors import ConfigError


def index_body(dense_dim: int, settings: IndexSettings, meta: dict | None = None) -> dict:
    """The body of a create-index request. `meta` (model name, w1/w2, ...) goes into `_meta`."""
    if dense_dim < 1:
        raise ConfigError(f"dense dimension must be >= 1, got {dense_dim}")
    return {
        "settings": {
            "index": {
                "knn": True,
                "knn.algo_param.ef_search": settings.ef_search,
                "number_of_shards": settings.shards,
                "number_of_replicas": settings.replicas,
                "refresh_interval": settings.refresh_interval,
            }
        },
        "mappings": {
            "dynamic": "strict",
            "_meta": {"sparse_mm_mapping": MAPPING_VERSION, **(meta or {})},
            "properties": {
                "id": {"type": "keyword"},
                DENSE_FIELD: {
                    "type": "knn_vector",
                    "dimension": dense_dim,
                    "method": {
                        "name": "hnsw",
                        "engine": "lucene",
                        "space_type": "cosinesimil",
                        "parameters": {
                            "m": settings.m,
                            "ef_construction": settings.ef_construction,
                        },
                    },
                },
                SPARSE_FIELD: {"type": "rank_features"},
                "filename": {"type": "keyword"},
                "split": {"type": "keyword"},
                "captions": {"type": "text", "index": False},
            },
        },
    }
