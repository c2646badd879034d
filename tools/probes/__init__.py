"""Probes: one-off measurements behind a decision (ingest settings, client time per document)."""
