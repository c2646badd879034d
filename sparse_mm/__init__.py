"""sparse-mm: joint learned sparse + dense text-image retrieval, served by OpenSearch.

The core package: model heads, scores, vocabulary, checkpoints, data formats, the synthetic
corpus, and the exact in-memory retriever. It never imports `training`, `indexing` or `bench`.
"""

from __future__ import annotations

import warnings

__version__ = "0.1.0"

# torch marks its (working) CSR support as beta on every use; users need not see that.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
