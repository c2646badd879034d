"""The Elasticsearch adapter: managed node, mapping, query bodies, client (indexing/engine.py)."""
