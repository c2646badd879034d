"""What `sparse-mm indices` lists and `sparse-mm delete` does, engine-neutral (through the
adapter's `EngineAdmin` calls)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from indexing.binding import BINDING_KEY, short_hash
from indexing.engine import as_engine
from indexing.layout import MAPPING_VERSION
from sparse_mm.errors import DataError, EngineError


def sparse_mm_indices(client) -> list[dict]:
    """The sparse-mm indices on an engine (those whose `_meta` carries the mapping version),
    one dict each: name, aliases, model (short hash + path), documents, graph, bytes, created."""
    engine = as_engine(client)
    out = []
    for row in engine.index_rows():
        if row.meta.get("sparse_mm_mapping") != MAPPING_VERSION:
            continue
        binding = row.meta.get(BINDING_KEY) or {}
        graph = engine.hnsw_parameters(row.properties)
        out.append(
            {
                "index": row.name,
                "aliases": list(row.aliases),
                "model": short_hash(binding) if binding else None,
                "model_path": binding.get("path") or row.meta.get("model"),
                "documents": row.documents,
                "hnsw": {"m": graph[0], "ef_construction": graph[1]} if graph else None,
                "ef_search": (row.meta.get("hnsw") or {}).get("ef_search"),
                "size_bytes": row.size_bytes,
                "created": row.created,
            }
        )
    return out


def render_indices(rows: list[dict]) -> str:
    """A table of `sparse_mm_indices`; an index without a recorded model shows "unbound"."""
    if not rows:
        return "no sparse-mm indices"
    head = ("index", "aliases", "model", "documents", "graph", "size", "created")
    table = [head]
    for r in rows:
        graph = f"m {r['hnsw']['m']}, ef {r['hnsw']['ef_construction']}" if r["hnsw"] else "-"
        model = f"{r['model']} {r['model_path']}" if r["model"] else f"unbound {r['model_path']}"
        table.append(
            (
                r["index"],
                ",".join(r["aliases"]) or "-",
                model,
                f"{r['documents']:,}",
                graph,
                _size(r["size_bytes"]),
                r["created"],
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    )


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def read_ids(path: Path) -> list[str]:
    """One id per line (blank lines and surrounding spaces ignored); one-line errors for a
    missing, unreadable or empty file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"--ids: {path} does not exist") from None
    except IsADirectoryError:
        raise DataError(f"--ids: {path} is a folder, not a file of ids") from None
    except UnicodeDecodeError:
        raise DataError(f"--ids: {path} is not UTF-8 text") from None
    ids = [line.strip() for line in text.splitlines() if line.strip()]
    if not ids:
        raise DataError(f"--ids: {path} holds no ids (one per line)")
    return ids


def delete_ids(client, index: str, ids: Sequence[str]) -> tuple[str, int, list[str]]:
    """Delete `ids` from `index` (a sparse-mm index, or an alias of one); (the concrete index,
    the count deleted, the ids not found). Refreshed: no later query returns them."""
    from indexing.index import check_index

    engine = as_engine(client)
    targets = engine.alias_targets(index)
    if len(targets) > 1:
        raise EngineError(
            f"alias {index!r} points to {len(targets)} indices ({', '.join(targets)}); "
            "delete from one of them with --index"
        )
    concrete = targets[0] if targets else index
    check_index(engine, concrete)
    deleted, missing = engine.delete_documents(concrete, ids)
    return concrete, deleted, missing
