"""The index layout every engine shares: field names, the mapping version, tunable settings.

Each engine adapter turns these into its own mapping (indexing/<engine>/mapping.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from sparse_mm.errors import ConfigError

DENSE_FIELD = "dense"
SPARSE_FIELD = "sparse"
MAPPING_VERSION = 1  # stored in the index's _meta; bump when the layout changes


@dataclass(frozen=True)
class IndexSettings:
    """Tunable settings of an index: shards, replicas, HNSW graph parameters (`ef_search` is an
    index setting on OpenSearch; Elasticsearch takes it per query, as `num_candidates`)."""

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


def index_body(
    dense: dict,
    sparse: dict,
    settings: IndexSettings,
    meta: dict | None = None,
    index_settings: dict | None = None,
) -> dict:
    """A create-index body in the shared layout, from an engine's own `dense` and `sparse` field
    mappings and its extra `index_settings`. `meta` (model, w1/w2, ...) goes into `_meta`."""
    return {
        "settings": {
            "index": {
                **(index_settings or {}),
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
                DENSE_FIELD: dense,
                SPARSE_FIELD: sparse,
                "filename": {"type": "keyword"},
                "split": {"type": "keyword"},
                "captions": {"type": "text", "index": False},
            },
        },
    }
