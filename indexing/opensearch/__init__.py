"""The OpenSearch adapter: managed node, mapping, query bodies, client, engine assets
(indexing/engine.py)."""
