"""Printing search results: a readable table, or JSON for programs."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict

from indexing.search import SearchResponse

MIN_CAPTION = 20  # the caption column never gets narrower than this
TERMS_HEADER = "top terms (q x d)"
# the two part columns by mode: hybrid's weighted parts (w1 * cos, w2 * dot) add up to the
# score; in dense and sparse mode the score is the plain cosine or dot product itself
PART_HEADERS = {"hybrid": ("dense", "sparse"), "dense": ("cos", "dot"), "sparse": ("cos", "dot")}


def render_table(response: SearchResponse, top_terms: int = 3, width: int | None = None) -> str:
    """Rank, id, score, its parts, the document's first caption (when the index stores
    captions) and the heaviest matching terms, in `width` columns [default: the terminal's
    width, else 100]: the caption gets what the other columns leave."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    first, second = PART_HEADERS.get(response.mode, PART_HEADERS["hybrid"])
    terms = [_terms(hit, top_terms) for hit in response.hits]
    captions = [_first_caption(hit.source) for hit in response.hits]
    prefix = f"{'rank':>4}  {'id':<10} {'score':>8} {first:>8} {second:>8}  "
    terms_width = max([len(TERMS_HEADER), *map(len, terms)])
    room = max(MIN_CAPTION, width - len(prefix) - 2 - terms_width)
    caption_width = min(room, max([len("caption"), *map(len, captions)]))
    header = f"{prefix}{'caption':<{caption_width}}  {TERMS_HEADER}"
    lines = [header, "-" * len(header)]
    rows = zip(response.hits, captions, terms, strict=True)
    for rank, (hit, caption, shown) in enumerate(rows, start=1):
        dense, sparse = _parts(hit, response.mode)
        lines.append(
            f"{rank:>4}  {hit.id:<10} {hit.score:>8.4f} {dense} {sparse}  "
            f"{_cut(caption, caption_width):<{caption_width}}  {shown}"
        )
    if not response.hits:
        lines.append("  (no hits)")
    trips = f" ({response.round_trips} requests)" if response.round_trips > 1 else ""
    lines.append(
        f"{response.mode}: {len(response.hits)} hits, engine took {response.took_ms} ms, "
        f"round trip {response.client_ms:.0f} ms{trips}"
    )
    return "\n".join(lines)


def response_dict(response: SearchResponse) -> dict:
    """The JSON shape of `sparse-mm query --json` (and of /api/search, which adds timings):
    mode, engine figures, unknown words and their word pieces, and the hits with their parts,
    matching terms, the concrete index that answered, filename, captions and the collection's
    own metadata fields (`meta`)."""
    hits = []
    for hit in response.hits:
        item = asdict(hit)
        source = item.pop("source")
        item["filename"] = source.get("filename")
        item["captions"] = source.get("captions", [])
        item["meta"] = source.get("meta", {})
        hits.append(item)
    return {
        "mode": response.mode,
        "took_ms": response.took_ms,
        "client_ms": round(response.client_ms, 3),
        "round_trips": response.round_trips,
        "unknown_words": [w.word for w in response.unknown_words],
        "word_pieces": {w.word: list(w.pieces) for w in response.unknown_words if w.pieces},
        "hits": hits,
    }


def render_json(response: SearchResponse) -> str:
    return json.dumps(response_dict(response), indent=2, ensure_ascii=False)


def _parts(hit, mode: str) -> tuple[str, str]:
    """The two part columns: hybrid's weighted parts; dense mode's cosine (the score) and no
    dot; sparse mode's dot (the score) and no cosine."""
    dense = hit.dense_part if mode != "sparse" else None
    sparse = hit.sparse_part if mode != "dense" else None
    return _num(dense), _num(sparse)


def _terms(hit, top_terms: int) -> str:
    return ", ".join(
        f"{m.term} {m.query_weight:.2f}x{m.doc_weight:.2f}" for m in hit.matches[:top_terms]
    )


def _num(value: float | None) -> str:
    return f"{value:>8.4f}" if value is not None else f"{'-':>8}"


def _first_caption(source: dict) -> str:
    captions = source.get("captions") or ["-"]
    return " ".join(str(captions[0]).split())


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
