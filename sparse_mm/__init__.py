"""sparse-mm: joint learned sparse + dense text-image retrieval, served by OpenSearch.

The core package: model heads, scores, vocabulary, checkpoints, data formats, the synthetic
corpus, and the exact in-memory retriever. It never imports `training`, `indexing` or `bench`.
"""

from __future__ import annotations

__version__ = "0.1.0"
