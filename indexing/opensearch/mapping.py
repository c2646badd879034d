"""The index definition: a k-NN field for dense vectors, `rank_features` for term weights."""

from __future__ import annotations

from dataclasses import dataclass

from sparse_mm.errors import ConfigError

DENSE_FIELD = "dense"
SPARSE_FIELD = "sparse"
MAPPING_VERSION = 1  # stored in the index's _meta; bump when the layout changes


@dataclass(frozen=True)
class IndexSettings:
    """Tunable settings of an index. HNSW uses the Lucene engine, the only one in the Maven
    Central k-NN build (and not the default since 2.18, so it is always named)."""

    shards: int = 1
    replicas: int = 0
    m: int = 16
    ef_construction: int = 128
    ef_search: int = 128
    refresh_interval: str = "1s"

    def __post_init__(self) -> None:
        for name in ("shards", "m", "ef_construction", "ef_search"):
            if getattr(self, name) < 1:
                raise ConfigError(f"index setting {name} must be >= 1, got {getattr(self, name)}")
        if self.replicas < 0:
            raise ConfigError(f"index setting replicas must be >= 0, got {self.replicas}")


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
