"""Where an ingest spends client time, per document:
`python -m tools.probes.ingest_client --model DIR [--n 20000] [--json FILE]`.

Times, on one synthetic collection, the steps `sparse-mm ingest` runs in this process: the
model's heads (`encode`), the documents (`indexing.documents.DocumentBuilder`), and the bulk
bodies as each official client's bulk helper builds them (its chunker calls the client's
serializer on every action and document): with the standard library's json (the clients'
default) and with the orjson serializers the project's clients use (indexing/*/client.py).
No engine is contacted.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict

import torch

from indexing.documents import DocumentBuilder
from indexing.layout import DENSE_FIELD
from sparse_mm.provenance import provenance

CHUNK = 500  # documents per bulk request (indexing.bulk.BulkOptions.chunk_size)


def _serializers() -> dict:
    from elasticsearch.serializer import JsonSerializer, OrjsonSerializer
    from opensearchpy.serializer import JSONSerializer

    from indexing.opensearch.client import orjson_serializer

    return {
        "opensearch-py, standard json": ("opensearch", JSONSerializer()),
        "opensearch-py, orjson (sparse-mm)": ("opensearch", orjson_serializer()),
        "elasticsearch, standard json": ("elasticsearch", JsonSerializer()),
        "elasticsearch, orjson (sparse-mm)": ("elasticsearch", OrjsonSerializer()),
    }


def _bodies(engine: str, serializer, docs: list[dict]) -> int:
    """Feed `docs` through the client's own bulk chunker; returns the bytes it made."""
    if engine == "opensearch":
        from opensearchpy.helpers.actions import _ActionChunker, expand_action
    else:
        from elasticsearch.helpers.actions import _ActionChunker, expand_action
    chunker = _ActionChunker(CHUNK, 100 * 2**20, serializer)
    size = 0
    for doc in docs:
        action = {"_op_type": "index", "_index": "probe", "_id": doc["id"], "_source": doc}
        if chunker.feed(*expand_action(action)):
            size += chunker.size
    chunker.flush()
    return size + chunker.size


def measure(model, emb: torch.Tensor, ids: list[str]) -> dict:
    n = len(ids)
    began = time.perf_counter()
    encoded = model.heads.encode(emb, "image")
    encode_s = time.perf_counter() - began
    builder = DocumentBuilder(model.vocab.tokens)
    began = time.perf_counter()
    docs = list(builder.build(ids, encoded.dense, encoded.sparse))
    build_s = time.perf_counter() - began
    out = {
        "documents": n,
        "encode_ms_per_doc": encode_s * 1000 / n,
        "documents_ms_per_doc": build_s * 1000 / n,
        "dense_dim": len(docs[0][DENSE_FIELD]),
        "mean_terms_per_doc": builder.report.terms_kept / n,
        "bulk_bodies": {},
    }
    for name, (engine, serializer) in _serializers().items():
        began = time.perf_counter()
        _bodies(engine, serializer, docs)
        out["bulk_bodies"][name] = {"ms_per_doc": (time.perf_counter() - began) * 1000 / n}
    return out


def main(argv: list[str] | None = None) -> None:
    from sparse_mm.checkpoint import load_model
    from sparse_mm.provenance import data_record, write_json
    from sparse_mm.synth import SynthParams, World, generate_chunk

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--n", type=int, default=20_000, help="synthetic images")
    parser.add_argument("--seed", type=int, default=7, help="synthetic world seed")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    model = load_model(args.model)
    world = World(SynthParams(seed=args.seed, n_images=max(args.n, 10_000)))
    emb = torch.from_numpy(generate_chunk(world, 0, args.n, captions=False).image_emb)
    torch.set_num_threads(1)  # one core, as the ingest shares the machine with the engine
    result = measure(model, emb, [str(i) for i in range(args.n)])
    print(
        f"per document: encode {result['encode_ms_per_doc']:.3f} ms, documents "
        f"{result['documents_ms_per_doc']:.3f} ms"
    )
    for name, r in result["bulk_bodies"].items():
        print(f"bulk bodies, {name:<36} {r['ms_per_doc']:.3f} ms")
    if args.json:
        data = data_record(**asdict(world.params), images_used=args.n)
        prog = "python -m tools.probes.ingest_client"
        record = provenance(argv, prog=prog, model=model.path, data=data)
        write_json({**record, "torch_threads": 1, **result}, args.json)


if __name__ == "__main__":
    main()
