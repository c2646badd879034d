"""Check what `./dev.sh demo` printed against exact in-memory retrieval (CI runs it).

`python -m tests.demo_check OUTPUT_FILE` parses the hit table that `sparse-mm query "a dog on a
beach"` printed and compares it with the exact integrated score of the bundled demo model over
the demo corpus' test split, computed here by `ExactRetriever` with the engine's weight
quantisation: the same ten ids in the same order (ties aside) and scores within 1e-4.
Exit 0 when they agree, 1 with the differences otherwise.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

DEMO_QUERY = "a dog on a beach"
_ROW = re.compile(r"^\s*(\d+)\s+(\S+)\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)\s")
TOLERANCE = 1e-4


def parse_hits(text: str) -> list[tuple[str, float]]:
    """(id, score) of each row of a `sparse-mm query` table, in rank order."""
    return [(m[2], float(m[3])) for m in map(_ROW.match, text.splitlines()) if m]


def exact_hits(k: int = 10) -> list[tuple[str, float]]:
    import torch

    from indexing.ingest import source_from_dataset
    from sparse_mm.checkpoint import load_model
    from sparse_mm.demo import demo_data_dir, demo_model_dir
    from sparse_mm.encoders import load_query_encoder
    from sparse_mm.retriever import ExactRetriever

    model = load_model(demo_model_dir())
    source = source_from_dataset(demo_data_dir(), "test")
    encoded = model.heads.encode(source.emb, "image")
    w1, w2 = model.serving_weights()
    retriever = ExactRetriever.from_encoded(source.ids, encoded, w1=w1, w2=w2, quantize=True)
    with torch.no_grad():
        embedding = load_query_encoder(model).encode_texts([DEMO_QUERY]).float()
        q_dense = model.heads.dense(embedding, "text")
        q_sparse = model.heads.sparse(q_dense)
    result = retriever.search(q_dense, q_sparse, k=k, mode="hybrid")
    return list(zip(result.ids(retriever)[0], result.scores[0].tolist(), strict=True))


def compare(printed: list[tuple[str, float]], exact: list[tuple[str, float]]) -> list[str]:
    """The differences, as lines (empty when they agree); ids may swap only between equal
    scores."""
    problems = []
    if len(printed) != len(exact):
        problems.append(f"{len(printed)} hits printed, {len(exact)} expected")
    pairs = zip(printed, exact, strict=False)  # a length mismatch is reported above
    for rank, ((pid, pscore), (eid, escore)) in enumerate(pairs, start=1):
        if abs(pscore - escore) > TOLERANCE:
            problems.append(f"rank {rank}: score {pscore:.4f} printed, exact {escore:.4f}")
        elif pid != eid and pid not in {i for i, s in exact if abs(s - pscore) <= TOLERANCE}:
            problems.append(f"rank {rank}: id {pid} printed, exact {eid}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.demo_check DEMO_OUTPUT_FILE", file=sys.stderr)
        return 2
    printed = parse_hits(Path(argv[0]).read_text())
    problems = compare(printed, exact_hits())
    if problems:
        print("demo check failed:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"demo check: the {len(printed)} hits printed equal the exact integrated score")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
