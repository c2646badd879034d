"""Typed errors raised at sparse-mm's boundaries.

The CLI turns every `SparseMMError` into one line on stderr and a non-zero exit; anything else is
a bug and keeps its traceback.
"""

from __future__ import annotations


class SparseMMError(Exception):
    """Base class: a problem the user can fix, described in one line."""

    exit_code = 2


class DataError(SparseMMError):
    """Input files are missing, malformed or inconsistent (names the file and the row)."""


class ModelError(SparseMMError):
    """A model directory is missing files or its tensors do not match its config."""


class ConfigError(SparseMMError):
    """A configuration value is unknown or impossible."""


class EngineError(SparseMMError):
    """OpenSearch could not be started, reached, or did not accept a request."""

    exit_code = 3


class Interrupted(SparseMMError, KeyboardInterrupt):
    """The user pressed Ctrl-C; the message says what was kept and how to go on. Still a
    KeyboardInterrupt, so that library callers see the interrupt they expect."""

    exit_code = 130  # the shell's status for a command ended by SIGINT


class ModelMismatchError(SparseMMError):
    """An index is bound to another model than the one given (or records none): encoding for
    it with this model would return wrong answers without a word."""
