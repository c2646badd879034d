"""The two steps of the service that the index lifecycle work (issue 24) will widen, each behind
one function so that wiring it is one change: the index's binding to the model, and the
search filters."""

from __future__ import annotations

from sparse_mm.errors import ConfigError


def check_model(engine, index: str, model) -> str | None:
    """Raise a one-line SparseMMError unless `index` can serve `model`'s queries; return a note
    worth showing, or None. Until indexing.binding lands: `index` is a sparse-mm index whose
    vectors have the model's dense width (indexing.index.check_index)."""
    from indexing.index import check_index

    check_index(engine, index, model.config.heads.dense_dim)
    return None


def search_filters(specs: list[str]) -> dict:
    """The SearchOptions fields for the request's `filter` parameters (FIELD=VALUE ...)."""
    if specs:
        raise ConfigError("filters are not supported by this version of sparse-mm serve")
    return {}
