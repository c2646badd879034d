"""The Elasticsearch index definition: `dense_vector` for dense vectors, `sparse_vector` for
term weights.

- `dense_vector` with `similarity: cosine` and `index_options: {type: hnsw}`: the plain float
  HNSW graph, not the int8-quantised `int8_hnsw` that 9.x uses by default, so that k-NN scores
  are exact float scores, (1 + cos) / 2 (checked on the node). The query's `num_candidates`
  plays the part of OpenSearch's `ef_search`.
- `sparse_vector` stores each term weight in a Lucene FeatureField, like OpenSearch's
  `rank_features`: 9 significant bits, truncated (1.2345678 is stored and scored as 1.234375),
  values must be positive normal floats (0, negatives, NaN are refused), so the in-memory
  reference quantises the same way for both engines (sparse_mm.scores.quantize_feature).
  Feature names may contain dots and may even be empty (unlike `rank_features`, whose query
  splits `field.name` at the last dot); names longer than Lucene's 32,766-byte term limit are
  refused. Names still go through the same codec (indexing.codec) on both engines, so that one
  document builder serves both and the stored names read the same.
- Elasticsearch 9 leaves vectors out of `_source` by default (`exclude_source_vectors`; asked
  for, they come back rebuilt from the index, the weights quantised); sparse-mm's indices keep
  them in `_source` as OpenSearch does, so a document reads back as it was sent.
"""

from __future__ import annotations

from indexing import layout
from indexing.layout import IndexSettings
from sparse_mm.errors import ConfigError

MAX_DIMS = 4096  # dense_vector's limit


def index_body(dense_dim: int, settings: IndexSettings, meta: dict | None = None) -> dict:
    """The body of a create-index request. `meta` (model name, w1/w2, ...) goes into `_meta`."""
    if not 1 <= dense_dim <= MAX_DIMS:
        raise ConfigError(f"dense dimension must be 1 to {MAX_DIMS}, got {dense_dim}")
    dense = {
        "type": "dense_vector",
        "dims": dense_dim,
        "index": True,
        "similarity": "cosine",
        "index_options": {
            "type": "hnsw",
            "m": settings.m,
            "ef_construction": settings.ef_construction,
        },
    }
    # Keep the vectors in _source, as OpenSearch does (9.x leaves them out by default): a
    # document reads back as it was sent, and explanations need no special fetch.
    extra = {"mapping.exclude_source_vectors": False}
    return layout.index_body(dense, {"type": "sparse_vector"}, settings, meta, extra)
