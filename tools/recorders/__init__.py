"""Recorders: commands that write the committed JSONs the README and docs render their examples
and tables from."""
