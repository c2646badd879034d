"""What a benchmark run searches: an encoded image collection and a set of caption queries.

Two sources:
- `synthetic_collection`: the first N images of the synthetic world of a seed, generated and
  encoded chunk by chunk without captions (a 1M-image corpus with 5 captions each would need
  ~15 GB of caption embeddings); the queries are captions of the test images (the first
  1,000), generated with their images. A seed's images do not depend on N, so the same queries
  are asked of every N and the collections are nested (10k is a prefix of 100k).
- `dataset_collection`: one split of a dataset in the seed layout; queries are a sample of
  that split's captions.
Each query knows its caption's image (the one relevant item, for R@k).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from indexing.search import QueryVectors, vectors_from_embedding
from sparse_mm.errors import DataError
from sparse_mm.model import EncodedCollection

ENCODE_BATCH = 4096


@dataclass
class Collection:
    """`ids` (N,) strings; `encoded` the model's image vectors (dense (N, D), CSR (N, V))."""

    ids: list[str]
    encoded: EncodedCollection
    description: str
    encode_seconds: float  # model heads only
    source_seconds: float = 0.0  # generating or reading the embeddings
    tokens: list[str] | None = None  # term names, when not the model's vocabulary

    @property
    def dense_dim(self) -> int:
        return int(self.encoded.dense.shape[1])

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Queries:
    """`vectors` as sent to the engine; `dense` (Q, D) and `sparse` (Q, V) the same numbers as
    tensors for the in-memory reference; `relevant` each query's image id; `texts` captions."""

    vectors: list[QueryVectors]
    dense: torch.Tensor
    sparse: torch.Tensor
    relevant: list[str]
    texts: list[str]

    def __len__(self) -> int:
        return len(self.vectors)


def encode_images(model, emb: torch.Tensor) -> tuple[EncodedCollection, float]:
    began = time.perf_counter()
    encoded = model.heads.encode(emb, "image", batch_size=ENCODE_BATCH)
    return encoded, time.perf_counter() - began


def concat_encoded(parts: Sequence[EncodedCollection]) -> EncodedCollection:
    """Row-wise concatenation of CSR collections."""
    if len(parts) == 1:
        return parts[0]
    crows, offset = [torch.zeros(1, dtype=torch.int64)], 0
    for p in parts:
        crows.append(p.sparse.crow_indices()[1:] + offset)
        offset += int(p.sparse.values().numel())
    vocab = parts[0].sparse.shape[1]
    n = sum(len(p) for p in parts)
    sparse = torch.sparse_csr_tensor(
        torch.cat(crows),
        torch.cat([p.sparse.col_indices() for p in parts]),
        torch.cat([p.sparse.values() for p in parts]),
        size=(n, vocab),
        check_invariants=False,
    )
    return EncodedCollection(torch.cat([p.dense for p in parts]), sparse)


def make_queries(model, emb: torch.Tensor, relevant: Sequence[str], texts: Sequence[str]):
    """(Q, in_dim) caption embeddings -> Queries, each built exactly as `sparse-mm query` does."""
    vectors = [vectors_from_embedding(model, emb[i : i + 1]) for i in range(emb.shape[0])]
    dense = torch.tensor([v.dense for v in vectors], dtype=torch.float32)
    sparse = torch.zeros(len(vectors), model.config.heads.vocab_size)
    for row, v in enumerate(vectors):
        for term, weight in v.terms.items():
            sparse[row, model.vocab.id_of(term)] = weight
    return Queries(vectors, dense, sparse, list(relevant), list(texts))


def synthetic_queries(
    model, *, seed: int, n_queries: int, n_images: int = 10_000, query_seed: int = 0
) -> Queries:
    """`n_queries` captions of the test images of the synthetic world `seed` (sampled with
    `query_seed`); the same for every collection size of 10,000 images or more."""
    from sparse_mm.synth import SynthParams, World, generate_chunk, split_sizes

    params = SynthParams(seed=seed, n_images=n_images)
    n_test, per = split_sizes(n_images)["test"], params.captions_per_image
    part = generate_chunk(World(params), 0, n_test)
    n = n_test * per
    rows = caption_sample(n, n_queries, query_seed)
    emb = torch.from_numpy(part.text_emb)[rows]
    return make_queries(model, emb, [str(r // per) for r in rows], [part.captions[r] for r in rows])


def caption_sample(n: int, n_queries: int, query_seed: int) -> list[int]:
    """`n_queries` of `n` caption rows, sorted: query seed 0's sample, or for another query
    seed one held out from it (none of seed 0's captions, while enough others remain)."""
    taken = set(caption_sample(n, n_queries, 0)) if query_seed else set()
    pool = [r for r in range(n) if r not in taken] if n - len(taken) >= n_queries else range(n)
    return sorted(random.Random(query_seed).sample(pool, min(n_queries, n)))


@dataclass(frozen=True)
class ModelWorld:
    """Which synthetic world a model workload draws from, and which of its captions ask."""

    seed: int  # the world's (its images, captions and their embeddings)
    query_seed: int  # 0: the default sample of the test captions; else one held out from it
    source: str  # why this world, for the report


def model_world(model_path, seed: int) -> ModelWorld:
    """The synthetic world a benchmark's `--seed` means for a model: the model's own training
    world where its provenance.json records one (a model sees any other world as noise: its
    R@k is 0 there and its vectors are not what it would serve), `seed` then choosing held-out
    queries; for any other model the world `seed` itself."""
    trained = _training_world(Path(model_path))
    if trained is None:
        why = "the model records no synthetic training world: its R@k here says nothing of it"
        return ModelWorld(seed, 0, f"synthetic seed {seed} ({why})")
    if seed == trained:
        return ModelWorld(trained, 0, f"the model's training world, synthetic seed {trained}")
    return ModelWorld(
        trained,
        seed,
        f"the model's training world, synthetic seed {trained}; queries held out from the "
        f"default sample, drawn with seed {seed}",
    )


def _training_world(model_path: Path) -> int | None:
    path = model_path / "provenance.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8")).get("data") or {}
    except (OSError, ValueError):
        return None
    recipe = data.get("recipe") or {}
    seed = recipe.get("seed")
    return seed if isinstance(seed, int) and "captions_per_image" in recipe else None


def synthetic_collection(
    model, n_images: int, *, seed: int, n_queries: int, query_seed: int = 0, progress=None
) -> tuple[Collection, Queries]:
    """The first `n_images` images of the synthetic world `seed` (generated without captions,
    chunk by chunk, and encoded), and `synthetic_queries` for it."""
    from sparse_mm.synth import BLOCK, SynthParams, World, generate_chunk

    if n_images < 10:
        raise DataError(f"a synthetic collection needs at least 10 images, got {n_images}")
    world = World(SynthParams(seed=seed, n_images=n_images))
    if world.params.dim != model.config.heads.in_dim:
        raise DataError(
            f"synthetic embeddings have {world.params.dim} dims but the model expects "
            f"{model.config.heads.in_dim}"
        )
    chunk, parts = 16 * BLOCK, []
    source_s = encode_s = 0.0
    for start in range(0, n_images, chunk):
        began = time.perf_counter()
        part = generate_chunk(world, start, min(chunk, n_images - start), captions=False)
        source_s += time.perf_counter() - began
        encoded, seconds = encode_images(model, torch.from_numpy(part.image_emb))
        encode_s += seconds
        parts.append(encoded)
        if progress:
            progress(min(start + chunk, n_images))
    began = time.perf_counter()
    queries = synthetic_queries(
        model, seed=seed, n_queries=n_queries, n_images=n_images, query_seed=query_seed
    )
    source_s += time.perf_counter() - began
    description = f"synthetic seed {seed}, first {n_images:,} images"
    collection = Collection(
        [str(i) for i in range(n_images)], concat_encoded(parts), description, encode_s, source_s
    )
    return collection, queries


def dataset_collection(
    model, root: Path, split: str, *, n_queries: int, query_seed: int = 0
) -> tuple[Collection, Queries]:
    """The images of one split of a dataset in the seed layout and a sample of its captions."""
    from sparse_mm.data import load_dataset

    began = time.perf_counter()
    dataset = load_dataset(root, splits=[split])
    if split not in dataset.splits:
        raise DataError(f"{root}: no split {split!r} (found {', '.join(dataset.splits)})")
    part = dataset.splits[split]
    if dataset.texts is None or len(part.text_rows) == 0:
        raise DataError(f"{root}: split {split!r} has no captions to query with")
    emb = dataset.images.emb[part.image_rows]
    source_s = time.perf_counter() - began
    encoded, encode_s = encode_images(model, emb)
    n = len(part.text_rows)
    rows = sorted(random.Random(query_seed).sample(range(n), min(n_queries, n)))
    text_emb = dataset.texts.emb[part.text_rows[rows]]
    relevant = [part.image_ids[int(part.text_to_image[r])] for r in rows]
    queries = make_queries(model, text_emb, relevant, [part.captions[r] for r in rows])
    description = f"{root} ({split}, {len(part.image_ids):,} images)"
    return Collection(list(part.image_ids), encoded, description, encode_s, source_s), queries


def synthetic_workload(seed: int, n_images: int, n_queries: int, vocab_size: int) -> dict:
    """What a synthetic collection is, for a report: its recipe, sizes and vocabulary."""
    from dataclasses import asdict

    from sparse_mm.synth import SynthParams

    return {
        "name": "synthetic",
        "vocab_size": vocab_size,
        "n_images": n_images,
        "n_queries": n_queries,
        "recipe": asdict(SynthParams(seed=seed, n_images=n_images)),
    }


def dataset_workload(root: Path, split: str, n_queries: int, vocab_size: int) -> dict:
    """What a dataset collection is, for a report: its folder, recipe, split and vocabulary."""
    from sparse_mm.provenance import data_record

    return {
        "name": f"dataset {Path(root).name}",
        "split": split,
        "n_queries": n_queries,
        **data_record(root),
        "vocab_size": vocab_size,
    }
