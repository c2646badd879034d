"""The query parameters of GET /api/search, checked: each misuse is one line (a 400)."""

from __future__ import annotations

from dataclasses import dataclass

from indexing.query_terms import MODES
from service.problems import Problem

KNOWN = ("q", "mode", "k", "filter")


@dataclass(frozen=True)
class Limits:
    max_query_chars: int = 500  # the encoder truncates long texts anyway: refuse, not cut
    max_k: int = 100
    max_url_bytes: int = 4096  # path + query string
    max_body_bytes: int = 1024  # the API takes no bodies; anything bigger is refused unread


@dataclass(frozen=True)
class SearchParams:
    q: str
    mode: str
    k: int
    filters: tuple[str, ...]


def parse_search(params, limits: Limits) -> SearchParams:
    """`params` (a multi-dict of the query string) -> SearchParams, or Problem(400)."""
    unknown = sorted(set(params.keys()) - set(KNOWN))
    if unknown:
        raise Problem(400, f"unknown parameter {unknown[0]!r}; expected {', '.join(KNOWN)}")
    for name in ("q", "mode", "k"):
        if len(params.getlist(name)) > 1:
            raise Problem(400, f"parameter {name!r} is given more than once")
    q = params.get("q")
    if q is None or not q.strip():
        raise Problem(400, "the query q is empty; give q=some+words")
    if len(q) > limits.max_query_chars:
        raise Problem(400, f"the query q has {len(q)} characters; at most {limits.max_query_chars}")
    mode = params.get("mode", "hybrid")
    if mode not in MODES:
        raise Problem(400, f"unknown mode {mode!r}; expected {', '.join(MODES)}")
    return SearchParams(q, mode, _k(params.get("k", "10"), limits), tuple(params.getlist("filter")))


def _k(text: str, limits: Limits) -> int:
    try:
        k = int(text)
    except ValueError:
        raise Problem(400, f"k must be a whole number, not {text!r}") from None
    if not 1 <= k <= limits.max_k:
        raise Problem(400, f"k must be between 1 and {limits.max_k}, not {k}")
    return k
