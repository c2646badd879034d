"""The service's two steps that the index lifecycle decides: the index's binding to the model,
and the search filters."""

from __future__ import annotations

from indexing.filters import SearchFilter, parse_filter


def check_model(searcher) -> str | None:
    """Raise a one-line SparseMMError unless the searcher's index (every concrete index behind
    an alias) is bound to its model, or, for a following searcher, to a model it can load;
    a note worth showing, or None."""
    before = searcher.model
    searcher.bind()
    if searcher.model is not before:
        return f"the index is bound to model {searcher.model.path}, which the service now uses"
    return None


def search_filters(specs: list[str]) -> SearchFilter:
    """The request's `filter` parameters (FIELD=VALUE, FIELD>=X ...) as a SearchFilter."""
    return parse_filter(specs)
