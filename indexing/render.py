"""Printing search results: a readable table, or JSON for programs."""

from __future__ import annotations

import json
from dataclasses import asdict

from indexing.search import SearchResponse

CAPTION_WIDTH = 28


def render_table(response: SearchResponse, top_terms: int = 3) -> str:
    """Rank, id, score, its dense and sparse parts, the document's first caption (when the index
    stores captions) and the heaviest matching terms."""
    header = (
        f"{'rank':>4}  {'id':<10} {'score':>8} {'dense':>8} {'sparse':>8}  "
        f"{'caption':<{CAPTION_WIDTH}}  top terms (q x d)"
    )
    lines = [header, "-" * len(header)]
    for rank, hit in enumerate(response.hits, start=1):
        terms = ", ".join(
            f"{m.term} {m.query_weight:.2f}x{m.doc_weight:.2f}" for m in hit.matches[:top_terms]
        )
        lines.append(
            f"{rank:>4}  {hit.id:<10} {hit.score:>8.4f} {_num(hit.dense_part)} "
            f"{_num(hit.sparse_part)}  {_caption(hit.source):<{CAPTION_WIDTH}}  {terms}"
        )
    if not response.hits:
        lines.append("  (no hits)")
    trips = f" ({response.round_trips} requests)" if response.round_trips > 1 else ""
    lines.append(
        f"{response.mode}: {len(response.hits)} hits, engine took {response.took_ms} ms, "
        f"round trip {response.client_ms:.0f} ms{trips}"
    )
    return "\n".join(lines)


def render_json(response: SearchResponse) -> str:
    hits = []
    for hit in response.hits:
        item = asdict(hit)
        source = item.pop("source")
        item["filename"] = source.get("filename")
        item["captions"] = source.get("captions", [])
        hits.append(item)
    return json.dumps(
        {
            "mode": response.mode,
            "took_ms": response.took_ms,
            "client_ms": round(response.client_ms, 3),
            "round_trips": response.round_trips,
            "unknown_words": [w.word for w in response.unknown_words],
            "word_pieces": {w.word: list(w.pieces) for w in response.unknown_words if w.pieces},
            "hits": hits,
        },
        indent=2,
        ensure_ascii=False,
    )


def _num(value: float | None) -> str:
    return f"{value:>8.4f}" if value is not None else f"{'-':>8}"


def _caption(source: dict) -> str:
    captions = source.get("captions") or ["-"]
    first = " ".join(str(captions[0]).split())
    return first if len(first) <= CAPTION_WIDTH else first[: CAPTION_WIDTH - 3] + "..."
