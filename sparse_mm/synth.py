"""A SYNTHETIC corpus in the reference layout, standing in for a real backbone's embeddings.

Nothing here comes from a real vision-language model. The generator builds a small world:
- concepts (objects, scenes, attributes, actions) named by real English words with synonyms
  (sparse_mm/synth_words.py), each a random vector in a 768-d latent space;
- images: 2-5 concepts each (objects drawn with a skewed frequency), plus detail no caption
  mentions; their "pre-projection" embedding is the salience-weighted sum of their concepts
  through an image-side random rotation, plus a modality offset and noise;
- captions: 5 per image from templates ("a red dog running on the beach"), each mentioning a
  subset of the image's concepts, often by a synonym; their embedding is the sum of the words'
  vectors through a *different* text-side rotation and offset (the modality gap), plus noise;
- an initial projection (`init_projection.safetensors`) that undoes both rotations only
  approximately: a mediocre but real dense retriever to start training from;
- word embeddings (`word_embeddings.safetensors`) relating each word to its concept.
Everything is deterministic for a seed; the world (vectors, rotations) does not depend on the
number of images, so the query encoder can be rebuilt from `synthetic.json` alone.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from sparse_mm.encoders import UnknownWord, register_query_encoder
from sparse_mm.errors import DataError
from sparse_mm.synth_words import FILLER, WORDPIECE_LIKE, concepts

BACKBONE = "synth"
RECIPE = "synthetic.json"
ENCODER_FILE = "query_encoder.safetensors"
VERSION = 1
_SLOTS = ("object", "object2", "scene", "attribute", "action")
_SALIENCE = np.array([1.0, 0.7, 0.8, 0.5, 0.6], dtype=np.float32)
_PRESENT = np.array([1.0, 0.4, 0.8, 0.6, 0.5])  # probability that an image has the slot
_MENTION = np.array([0.95, 0.6, 0.7, 0.6, 0.6])  # probability that a caption mentions it
_PREPOSITIONS = ("on the", "in the", "at the", "near the", "by the")


@dataclass(frozen=True)
class SynthParams:
    seed: int = 0
    n_images: int = 20000
    dim: int = 768
    dense_dim: int = 256
    captions_per_image: int = 5
    image_noise: float = 0.35
    image_detail: float = 0.6  # what images show and no caption says
    text_noise: float = 0.35
    projection_noise: float = 1.4  # how far the initial projection is from the ideal one
    synonym_spread: float = 0.35
    version: int = VERSION


class World:
    """The seed-determined parts: vocabulary, word vectors, rotations, offsets, projection."""

    def __init__(self, params: SynthParams) -> None:
        self.params = params
        rng = np.random.default_rng([params.seed, 7_000_001])
        d = params.dim
        self.concepts = concepts()
        kinds = [k for k, _, _ in self.concepts]
        self.by_kind = {k: np.array([i for i, x in enumerate(kinds) if x == k]) for k in set(kinds)}
        self.concept_vec = (rng.standard_normal((len(self.concepts), d)) / np.sqrt(d)).astype(
            np.float32
        )
        # words: every concept name and synonym, then filler, then WordPiece-shaped tokens
        self.words: list[str] = []
        self.word_concept: list[int] = []
        self.concept_words: list[list[int]] = []
        for c, (_, name, synonyms) in enumerate(self.concepts):
            ids = []
            for w in (name, *synonyms):
                ids.append(len(self.words))
                self.words.append(w)
                self.word_concept.append(c)
            self.concept_words.append(ids)
        for w in FILLER + WORDPIECE_LIKE:
            self.words.append(w)
            self.word_concept.append(-1)
        self.word_id = {w: i for i, w in enumerate(self.words)}
        width = max(len(ids) for ids in self.concept_words)
        self.concept_options = np.array(
            [ids + [ids[0]] * (width - len(ids)) for ids in self.concept_words], dtype=np.int64
        )
        self.n_options = np.array([len(ids) for ids in self.concept_words], dtype=np.int64)
        n_words = len(self.words)
        spread = rng.standard_normal((n_words, d)).astype(np.float32) / np.sqrt(d)
        concept_of = np.array(self.word_concept)
        self.word_vec = np.where(
            (concept_of >= 0)[:, None],
            self.concept_vec[np.maximum(concept_of, 0)] + params.synonym_spread * spread,
            0.15 * spread,
        ).astype(np.float32)
        self.rot_image = _orthogonal(rng, d)
        self.rot_text = _orthogonal(rng, d)
        self.offset_image = (rng.standard_normal(d) / np.sqrt(d)).astype(np.float32)
        self.offset_text = (rng.standard_normal(d) / np.sqrt(d)).astype(np.float32)
        ideal = rng.standard_normal((params.dense_dim, d)).astype(np.float32) / np.sqrt(d)
        self.projection = {}
        for side, rot, offset in (
            ("text", self.rot_text, self.offset_text),
            ("vision", self.rot_image, self.offset_image),
        ):
            noisy = ideal + params.projection_noise * rng.standard_normal(ideal.shape).astype(
                np.float32
            ) / np.sqrt(d)
            weight = noisy @ rot.T  # undoes the rotation (approximately, through the noise)
            self.projection[f"{side}_proj.weight"] = weight
            self.projection[f"{side}_proj.bias"] = -(weight @ offset)
        self.text_table = self.word_vec @ self.rot_text.T  # a word's contribution to a caption
        # skewed frequencies, most common first: objects and scenes strongly, others mildly
        exponents = {"object": 0.9, "scene": 0.9, "attribute": 0.5, "action": 0.5}
        self.frequency = {k: _zipf(len(self.by_kind[k]), e) for k, e in exponents.items()}
        self.object_p = self.frequency["object"]

    def vocabulary(self) -> list[str]:
        return self.words

    def word_embeddings(self) -> np.ndarray:
        """(V, dim): each word's latent vector, so tied init relates words to their concepts."""
        return self.word_vec / np.linalg.norm(self.word_vec, axis=1, keepdims=True)


def _orthogonal(rng: np.random.Generator, d: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * np.sign(np.diag(r))).astype(np.float32)


def _zipf(n: int, exponent: float) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1) ** exponent
    return p / p.sum()


@dataclass
class Chunk:
    image_ids: np.ndarray  # (n,)
    image_emb: np.ndarray  # (n, dim)
    slots: np.ndarray  # (n, 5) concept index per slot, -1 when absent
    captions: list[str]  # (n * captions_per_image,)
    text_emb: np.ndarray  # (n * captions_per_image, dim)


BLOCK = 1000  # images drawn from one random stream; chunks are made of whole blocks


def generate_chunk(world: World, start: int, count: int, *, captions: bool = True) -> Chunk:
    """Images start .. start + count - 1 (start a multiple of BLOCK): every block of BLOCK
    images has its own random stream, so the output does not depend on the chunking.
    `captions=False` skips the captions (empty `captions` and `text_emb`); the images are the
    same, since a block draws its images before its captions."""
    if start % BLOCK:
        raise ValueError(f"chunks start at multiples of {BLOCK}, got {start}")
    blocks = [
        _generate_block(world, b, min(BLOCK, start + count - b), captions)
        for b in range(start, start + count, BLOCK)
    ]
    if len(blocks) == 1:
        return blocks[0]
    return Chunk(
        np.concatenate([b.image_ids for b in blocks]),
        np.concatenate([b.image_emb for b in blocks]),
        np.concatenate([b.slots for b in blocks]),
        [c for b in blocks for c in b.captions],
        np.concatenate([b.text_emb for b in blocks]),
    )


def _generate_block(world: World, start: int, count: int, with_captions: bool = True) -> Chunk:
    p = world.params
    rng = np.random.default_rng([p.seed, 1, start])
    noise = torch.Generator().manual_seed(int(rng.integers(2**62)))
    scale = 1.0 / np.sqrt(p.dim)
    slots = _sample_slots(world, rng, count)
    present = slots >= 0
    jitter = rng.uniform(0.7, 1.3, size=slots.shape).astype(np.float32)
    weights = torch.from_numpy(np.where(present, _SALIENCE * jitter, 0.0).astype(np.float32))
    vectors = torch.from_numpy(world.concept_vec)[torch.from_numpy(np.maximum(slots, 0))]
    latent = torch.einsum("ns,nsd->nd", weights, vectors)
    latent += p.image_detail * scale * torch.randn(latent.shape, generator=noise)
    image_emb = latent @ torch.from_numpy(world.rot_image).T + torch.from_numpy(world.offset_image)
    image_emb += p.image_noise * scale * torch.randn(image_emb.shape, generator=noise)
    ids = np.arange(start, start + count)
    if not with_captions:
        return Chunk(ids, image_emb.numpy(), slots, [], np.zeros((0, p.dim), np.float32))
    captions, offsets, word_ids = _captions(world, rng, slots)
    text_emb = torch.nn.functional.embedding_bag(
        torch.from_numpy(word_ids),
        torch.from_numpy(world.text_table),
        torch.from_numpy(offsets),
        mode="sum",
    ) + torch.from_numpy(world.offset_text)
    text_emb += p.text_noise * scale * torch.randn(text_emb.shape, generator=noise)
    return Chunk(ids, image_emb.numpy(), slots, captions, text_emb.numpy())


def _sample_slots(world: World, rng: np.random.Generator, n: int) -> np.ndarray:
    objects = world.by_kind["object"]
    slots = np.full((n, len(_SLOTS)), -1, dtype=np.int64)
    slots[:, 0] = objects[rng.choice(len(objects), size=n, p=world.object_p)]
    second = objects[rng.choice(len(objects), size=n, p=world.object_p)]
    slots[:, 1] = np.where((rng.random(n) < _PRESENT[1]) & (second != slots[:, 0]), second, -1)
    for s, kind in ((2, "scene"), (3, "attribute"), (4, "action")):
        pool = world.by_kind[kind]
        pick = pool[rng.choice(len(pool), size=n, p=world.frequency[kind])]
        slots[:, s] = np.where(rng.random(n) < _PRESENT[s], pick, -1)
    return slots


def _captions(world: World, rng: np.random.Generator, slots: np.ndarray):
    """Template captions "a [attribute] object [action] [with a object2] [on the scene]".

    Returns (texts, offsets (n_captions,) into word_ids, word_ids): the words of every caption
    flattened, for embedding_bag."""
    n, per = slots.shape[0], world.params.captions_per_image
    mention = (rng.random((n, per, len(_SLOTS))) < _MENTION) & (slots[:, None, :] >= 0)
    # which word names each mentioned concept: its name 60% of the time, else a synonym
    options, n_options = world.concept_options, world.n_options
    concept = np.broadcast_to(np.maximum(slots, 0)[:, None, :], mention.shape)
    k = n_options[concept]
    synonym = 1 + (rng.random(mention.shape) * np.maximum(k - 1, 1)).astype(np.int64)
    choice = np.where((rng.random(mention.shape) < 0.6) | (k == 1), 0, synonym)
    word = np.where(mention, options[concept, choice], -1).tolist()
    prep = rng.integers(0, len(_PREPOSITIONS), size=(n, per)).tolist()
    a, with_ = world.word_id["a"], world.word_id["with"]
    preps = [[world.word_id[w] for w in ph.split()] for ph in _PREPOSITIONS]
    words = world.words
    texts, offsets, flat = [], [], []
    for i in range(n):
        for j in range(per):
            obj, obj2, scene, attr, action = word[i][j]
            ids = [a]
            if attr >= 0:
                ids.append(attr)
            ids.append(obj if obj >= 0 else world.concept_options[slots[i, 0], 0])
            if action >= 0:
                ids.append(action)
            if obj2 >= 0:
                ids += [with_, a, obj2]
            if scene >= 0:
                ids += [*preps[prep[i][j]], scene]
            offsets.append(len(flat))
            flat += ids
            texts.append(" ".join([words[t] for t in ids]))
    return texts, np.array(offsets, dtype=np.int64), np.array(flat, dtype=np.int64)


@dataclass
class SynthSummary:
    out: Path
    n_images: int
    n_captions: int
    seconds: float
    init_dense_r1: float

    def describe(self) -> str:
        return (
            f"wrote a SYNTHETIC corpus to {self.out}: {self.n_images:,} images, "
            f"{self.n_captions:,} captions in {self.seconds:.1f}s; initial projection "
            f"text->image dense R@1 on the test split: {100 * self.init_dense_r1:.1f}%"
        )


def split_sizes(n_images: int) -> dict[str, int]:
    test = min(1000, max(1, n_images // 10))
    val = min(1000, max(1, n_images // 10))
    rest = n_images - test - val
    if rest < 2:
        raise DataError(f"--images {n_images} is too small; use at least 10")
    restval = rest // 10
    return {"test": test, "val": val, "restval": restval, "train": rest - restval}


def synthesize(
    out: Path,
    params: SynthParams | None = None,
    *,
    chunk_images: int = 20000,
    progress: bool = False,
) -> SynthSummary:
    """Write the corpus into `out` (created; existing corpus files are replaced).
    `chunk_images` (rounded to whole blocks) bounds memory; it does not change the output."""
    from tqdm import tqdm

    from sparse_mm.synth_io import CorpusWriter

    params = params or SynthParams()
    chunk_images = max(BLOCK, chunk_images // BLOCK * BLOCK)
    began = time.monotonic()
    world = World(params)
    sizes = split_sizes(params.n_images)
    out = Path(out)
    writer = CorpusWriter(out, BACKBONE, sizes, params.captions_per_image)
    test_img, test_txt = None, None
    bar = tqdm(total=params.n_images, unit="img", desc="synth", disable=None if progress else True)
    for start in range(0, params.n_images, chunk_images):
        chunk = generate_chunk(world, start, min(chunk_images, params.n_images - start))
        writer.write(chunk, world)
        if start == 0:  # the test split is the first images
            n_test = sizes["test"]
            test_img = chunk.image_emb[:n_test]
            test_txt = chunk.text_emb[: n_test * params.captions_per_image]
        bar.update(len(chunk.image_ids))
    bar.close()
    writer.close(world.vocabulary(), world.word_embeddings(), world.projection)
    r1 = projection_r1(world, test_img, test_txt, params.captions_per_image)
    recipe = {
        **asdict(params),
        "backbone": BACKBONE,
        "splits": sizes,
        "init_dense_r1": r1,
        "note": "synthetic data: not produced by any real vision-language model",
    }
    (out / RECIPE).write_text(json.dumps(recipe, indent=2) + "\n")
    return SynthSummary(
        out,
        params.n_images,
        params.n_images * params.captions_per_image,
        time.monotonic() - began,
        r1,
    )


def projection_r1(world: World, image_emb, text_emb, per: int) -> float:
    """Text -> image R@1 of the initial projection (each caption's image is image i // per)."""
    w = world.projection
    img = torch.nn.functional.normalize(
        torch.from_numpy(image_emb @ w["vision_proj.weight"].T + w["vision_proj.bias"]), dim=1
    )
    txt = torch.nn.functional.normalize(
        torch.from_numpy(text_emb @ w["text_proj.weight"].T + w["text_proj.bias"]), dim=1
    )
    best = (txt @ img.T).argmax(dim=1)
    return float((best == torch.arange(len(txt)) // per).float().mean())


class SyntheticTextEncoder:
    """Free text -> pre-projection text embedding, through the corpus' own text-side map
    (without sampling noise). Unknown words are left out (`unknown_words` names them)."""

    def __init__(self, words: list[str], table: torch.Tensor, offset: torch.Tensor) -> None:
        self.words = words
        self.word_id = {w: i for i, w in enumerate(words)}
        self.table, self.offset = table.float(), offset.float()
        self.in_dim = table.shape[1]

    @classmethod
    def from_corpus(cls, data_dir: Path) -> SyntheticTextEncoder:
        try:
            recipe = json.loads((Path(data_dir) / RECIPE).read_text())
        except FileNotFoundError as exc:
            raise DataError(f"{data_dir}: no {RECIPE}; not a synthetic corpus") from exc
        known = set(SynthParams.__dataclass_fields__)
        world = World(SynthParams(**{k: v for k, v in recipe.items() if k in known}))
        return cls(
            world.words, torch.from_numpy(world.text_table), torch.from_numpy(world.offset_text)
        )

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        rows = []
        for text in texts:
            ids = [self.word_id[w] for w in _words(text) if w in self.word_id]
            if not ids:
                raise DataError(
                    f"no known words in query {text[:80]!r}; `sparse-mm data world` lists "
                    "the demo corpus' words"
                )
            rows.append(self.table[ids].sum(dim=0) + self.offset)
        return torch.stack(rows)

    def unknown_words(self, text: str) -> list[UnknownWord]:
        """The words of `text` this encoder does not know: they are left out of the query."""
        unknown = [w for w in _words(text) if w not in self.word_id]
        return [UnknownWord(w) for w in dict.fromkeys(unknown)]

    def save(self, model_dir: Path) -> dict:
        from safetensors.torch import save_file

        save_file(
            {"table": self.table.half().contiguous(), "offset": self.offset.contiguous()},
            str(Path(model_dir) / ENCODER_FILE),
            metadata={"words": json.dumps(self.words)},
        )
        return {"type": "synthetic", "file": ENCODER_FILE}

    @classmethod
    def load(cls, model_dir: Path, desc: dict) -> SyntheticTextEncoder:
        from safetensors import safe_open

        path = Path(model_dir) / desc.get("file", ENCODER_FILE)
        if not path.exists():
            raise DataError(f"{path} is missing (the model's synthetic query encoder)")
        with safe_open(str(path), framework="pt") as f:
            words = json.loads(f.metadata()["words"])
            return cls(words, f.get_tensor("table"), f.get_tensor("offset"))


def _words(text: str) -> list[str]:
    """The words the synthetic encoder reads: runs of letters, lower case."""
    return re.findall(r"[^\W\d_]+", text.lower())


register_query_encoder("synthetic", SyntheticTextEncoder.load)
