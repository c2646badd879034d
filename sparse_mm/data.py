"""Datasets in the reference layout (METHOD.md, "Inputs"), loaded fast and validated.

    img_embs_before_proj_<backbone>.parquet    id (string), emb (list<float>, in_dim)
    text_embs_before_proj_<backbone>.parquet   id = sentid, emb
    dataset_meta.json                          Karpathy format; image ids are imgid
    vocab.txt, word_embeddings.safetensors, init_projection.safetensors   optional

Embeddings are read as one flat Arrow buffer reshaped into (N, in_dim) without per-row Python
work; float32 data is not copied again. Every problem is a DataError naming the file and the row.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sparse_mm.errors import DataError

META = "dataset_meta.json"
SPLITS = ("train", "restval", "val", "test")
# The reference trains on split `train` only (about 83k MSCOCO images); the Karpathy convention
# of counting `restval` as training (113k) is an option: load_dataset(include_restval=True).
PROJECTION_TENSORS = (
    "text_proj.weight",
    "text_proj.bias",
    "vision_proj.weight",
    "vision_proj.bias",
)


def image_file(root: Path, backbone: str) -> Path:
    return Path(root) / f"img_embs_before_proj_{backbone}.parquet"


def text_file(root: Path, backbone: str) -> Path:
    return Path(root) / f"text_embs_before_proj_{backbone}.parquet"


@dataclass
class EmbeddingTable:
    path: Path
    ids: list[str]
    emb: torch.Tensor  # (N, dim) float32
    _rows: dict[str, int] | None = field(default=None, repr=False)

    def row_of(self, id_: str) -> int:
        if self._rows is None:
            self._rows = {k: i for i, k in enumerate(self.ids)}
        try:
            return self._rows[id_]
        except KeyError:
            raise DataError(f"{self.path}: no row with id {id_!r}") from None

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Split:
    name: str
    image_rows: torch.Tensor  # (n_img,) rows into the image table
    text_rows: torch.Tensor  # (n_txt,) rows into the text table
    text_to_image: torch.Tensor  # (n_txt,) position in image_rows of each caption's image
    captions: list[str]
    image_ids: list[str]
    filenames: list[str]
    caption_ids: list[str] = field(default_factory=list)
    # each image's own fields of the meta file (a licence, a date, ...): `entry_fields`
    metadata: list[dict] = field(default_factory=list)

    def image_emb(self, dataset: Dataset) -> torch.Tensor:
        return dataset.images.emb[self.image_rows]

    def text_emb(self, dataset: Dataset) -> torch.Tensor:
        return dataset.texts.emb[self.text_rows]


@dataclass
class Dataset:
    root: Path
    backbone: str
    images: EmbeddingTable
    texts: EmbeddingTable | None
    splits: dict[str, Split]
    meta_path: Path
    vocab_path: Path | None = None
    word_embeddings: torch.Tensor | None = None
    init_projection: dict[str, torch.Tensor] | None = None
    include_restval: bool = False

    @property
    def train_splits(self) -> tuple[str, ...]:
        """The meta-file splits that make up the 'train' split."""
        return ("train", "restval") if self.include_restval else ("train",)


def find_backbones(root: Path) -> list[str]:
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise DataError(f"{root} is a file, not a dataset folder (give the folder that holds it)")
    if not root.is_dir():
        raise DataError(f"dataset folder {root} does not exist")
    prefix = "img_embs_before_proj_"
    return sorted(p.stem[len(prefix) :] for p in root.glob(f"{prefix}*.parquet"))


def load_embeddings(path: Path, dim: int | None = None) -> EmbeddingTable:
    """Read and validate one embeddings parquet file (`id`, `emb`).

    Row batches are decoded straight into one preallocated (N, dim) float32 tensor: the
    embeddings exist once in memory, whatever the file's row groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist")
    try:
        handle = pq.ParquetFile(path)
        names = handle.schema_arrow.names
        if "id" not in names or "emb" not in names:
            raise DataError(f"{path}: expected columns 'id' and 'emb', found {names}")
        n = handle.metadata.num_rows
        if n == 0:
            raise DataError(f"{path}: the file has no rows")
        ids = [str(v) for v in handle.read(columns=["id"]).column("id").to_pylist()]
        emb_type = handle.schema_arrow.field("emb").type
        if not (
            pa.types.is_list(emb_type)
            or pa.types.is_large_list(emb_type)
            or pa.types.is_fixed_size_list(emb_type)
        ):
            raise DataError(f"{path}: column 'emb' must be a list of floats, found {emb_type}")
        out, row = None, 0
        for batch in handle.iter_batches(columns=["emb"], batch_size=65536):
            block = _block(path, batch.column(0), ids, row, dim)
            if out is None:
                dim = block.shape[1]
                out = torch.empty((n, dim), dtype=torch.float32)
            bad = np.flatnonzero(~np.isfinite(block).all(axis=1))  # checked while cache-hot
            if len(bad):
                i = row + int(bad[0])
                raise DataError(f"{path}: row {i} (id {ids[i]}) has NaN or infinite values")
            out.numpy()[row : row + len(block)] = block  # one copy, from Arrow into place
            row += len(block)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable parquet file ({exc})") from exc
    rows = {}
    for i, id_ in enumerate(ids):
        if id_ in rows:
            raise DataError(f"{path}: row {i} repeats id {id_} of row {rows[id_]}")
        rows[id_] = i
    return EmbeddingTable(path, ids, out, rows)


def _block(path: Path, column, ids: list[str], first_row: int, dim: int | None) -> np.ndarray:
    """One record batch's list column -> (rows, dim) float32, checking every row's length."""
    import pyarrow as pa

    if column.null_count:
        i = first_row + int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{path}: row {i} (id {ids[i]}) has no embedding")
    if pa.types.is_fixed_size_list(column.type):
        lengths = np.full(len(column), column.type.list_size)
    else:
        lengths = np.diff(column.offsets.to_numpy())
    expected = dim if dim is not None else int(lengths[0])
    if (lengths != expected).any():
        i = first_row + int(np.flatnonzero(lengths != expected)[0])
        raise DataError(
            f"{path}: row {i} (id {ids[i]}) has {lengths[i - first_row]} values, "
            f"expected {expected}"
        )
    values = column.flatten()
    if not pa.types.is_floating(values.type):
        raise DataError(f"{path}: embedding values must be floats, found {values.type}")
    flat = values.to_numpy(zero_copy_only=False)
    return flat.astype(np.float32, copy=False).reshape(len(column), expected)


def write_embeddings(path: Path, ids: Sequence[str], emb: np.ndarray | torch.Tensor) -> None:
    """Write `id`/`emb` in the reference layout (emb as list<float>)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    array = np.ascontiguousarray(np.asarray(emb, dtype=np.float32))
    n, dim = array.shape
    offsets = pa.array(np.arange(0, (n + 1) * dim, dim, dtype=np.int32))
    lists = pa.ListArray.from_arrays(offsets, pa.array(array.reshape(-1)))
    pq.write_table(pa.table({"id": pa.array([str(i) for i in ids]), "emb": lists}), path)


def load_dataset(
    root: Path,
    backbone: str | None = None,
    *,
    splits: Iterable[str] | None = None,
    load_texts: bool = True,
    include_restval: bool = False,
) -> Dataset:
    """Load a dataset folder; `splits` limits which splits are built (default: all).

    Images of meta split `restval` join 'train' only with `include_restval` (the reference
    leaves them out); otherwise they belong to no split."""
    root = Path(root)
    backbones = find_backbones(root)
    if backbone is None:
        if len(backbones) != 1:
            found = ", ".join(backbones) or "none"
            raise DataError(
                f"{root}: expected one img_embs_before_proj_<backbone>.parquet, "
                f"found {found}; choose with --backbone"
            )
        backbone = backbones[0]
    images = load_embeddings(image_file(root, backbone))
    texts = load_embeddings(text_file(root, backbone), images.emb.shape[1]) if load_texts else None
    meta_path = root / META
    wanted = set(splits) if splits is not None else None
    built = _build_splits(meta_path, images, texts, wanted, include_restval)
    vocab_path = root / "vocab.txt" if (root / "vocab.txt").exists() else None
    return Dataset(
        root,
        backbone,
        images,
        texts,
        built,
        meta_path,
        vocab_path,
        _load_word_embeddings(root / "word_embeddings.safetensors", vocab_path),
        _load_projection(root / "init_projection.safetensors", images.emb.shape[1]),
        include_restval,
    )


def _read_meta(meta_path: Path) -> list[dict]:
    try:
        meta = _json_loads(meta_path.read_bytes())
    except FileNotFoundError as exc:
        raise DataError(f"{meta_path} does not exist (Karpathy-format split file)") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{meta_path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("images"), list):
        raise DataError(f"{meta_path}: expected an object with an 'images' list")
    return meta["images"]


def _build_splits(
    meta_path: Path,
    images: EmbeddingTable,
    texts: EmbeddingTable | None,
    wanted: set[str] | None,
    include_restval: bool = False,
) -> dict[str, Split]:
    acc: dict[str, dict] = {}
    left_out = 0  # restval images, when they are not training images
    missing_images, missing_texts = [], []
    for n, entry in enumerate(_read_meta(meta_path)):
        try:
            split, imgid = entry["split"], str(entry["imgid"])
        except (KeyError, TypeError) as exc:
            raise DataError(f"{meta_path}: image entry {n} lacks 'split' or 'imgid'") from exc
        if split not in SPLITS:
            raise DataError(
                f"{meta_path}: image entry {n} (imgid {imgid}) has unknown split "
                f"{split!r}; expected one of {', '.join(SPLITS)}"
            )
        if split == "restval" and not include_restval:
            left_out += 1
            continue
        name = "train" if split == "restval" else split
        if wanted is not None and name not in wanted:
            continue
        row = images._rows.get(imgid)
        if row is None:
            missing_images.append(imgid)
            continue
        part = acc.setdefault(
            name,
            {"img": [], "txt": [], "t2i": [], "cap": [], "ids": [], "files": [], "cids": [],
             "meta": []},
        )  # fmt: skip
        position = len(part["img"])
        part["img"].append(row)
        part["ids"].append(imgid)
        part["files"].append(str(entry.get("filename", "")))
        part["meta"].append(entry_fields(entry))
        for sentence in entry.get("sentences", []):
            sentid = str(sentence["sentid"])
            if texts is not None:
                t_row = texts._rows.get(sentid)
                if t_row is None:
                    missing_texts.append(sentid)
                    continue
                part["txt"].append(t_row)
            part["t2i"].append(position)
            part["cap"].append(str(sentence.get("raw", "")))
            part["cids"].append(sentid)
    for kind, missing, table in (
        ("imgid", missing_images, images),
        ("sentid", missing_texts, texts),
    ):
        if missing:
            raise DataError(
                f"{meta_path}: {len(missing)} {kind}s have no row in {table.path} "
                f"(first: {', '.join(missing[:3])})"
            )
    used = sum(len(p["img"]) for p in acc.values())
    if wanted is None and used + left_out < len(images):
        unused = len(images) - used - left_out
        warnings.warn(f"{images.path}: {unused} rows are in no split", stacklevel=3)
    return {
        name: Split(
            name,
            torch.tensor(p["img"], dtype=torch.long),
            torch.tensor(p["txt"], dtype=torch.long),
            torch.tensor(p["t2i"], dtype=torch.long),
            p["cap"],
            p["ids"],
            p["files"],
            p["cids"],
            p["meta"],
        )
        for name, p in acc.items()
    }


# Keys of an image entry that sparse-mm reads itself (or that only link its captions); the
# others are the collection's own metadata.
OWN_KEYS = frozenset({"imgid", "id", "split", "filename", "sentences", "sentids"})


def entry_fields(entry: dict) -> dict:
    """An image entry's own metadata fields (a licence, a date, a category, ...): every key
    sparse-mm does not read itself, without null values."""
    return {k: v for k, v in entry.items() if k not in OWN_KEYS and v is not None}


def _json_loads(raw: bytes):
    try:  # orjson parses a 150 MB Karpathy file several times faster than the standard library
        import orjson
    except ImportError:
        return json.loads(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise json.JSONDecodeError(exc.msg, exc.doc, exc.pos) from exc


def _load_word_embeddings(path: Path, vocab_path: Path | None) -> torch.Tensor | None:
    if not path.exists():
        return None
    tensors = _read_safetensors(path)
    if "weight" not in tensors or tensors["weight"].ndim != 2:
        raise DataError(f"{path}: expected one 2-d tensor named 'weight' (V, hidden)")
    weight = tensors["weight"].float()
    if vocab_path is not None:
        lines = vocab_path.read_bytes().count(b"\n")
        if weight.shape[0] != lines:
            raise DataError(
                f"{path}: 'weight' has {weight.shape[0]} rows but {vocab_path} has {lines} tokens"
            )
    return weight


def _load_projection(path: Path, in_dim: int) -> dict[str, torch.Tensor] | None:
    if not path.exists():
        return None
    tensors = _read_safetensors(path)
    missing = [n for n in PROJECTION_TENSORS if n not in tensors]
    if missing:
        raise DataError(f"{path}: missing tensors {', '.join(missing)}")
    for prefix in ("text_proj", "vision_proj"):
        w, b = tensors[f"{prefix}.weight"], tensors[f"{prefix}.bias"]
        if w.ndim != 2 or w.shape[1] != in_dim or b.shape != (w.shape[0],):
            raise DataError(
                f"{path}: {prefix} has weight {tuple(w.shape)} and bias "
                f"{tuple(b.shape)}; expected (dense_dim, {in_dim}) and (dense_dim,)"
            )
    return {n: tensors[n].float() for n in PROJECTION_TENSORS}


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise DataError(f"{path}: not a readable safetensors file ({exc})") from exc


def load_caption_embedding(root: Path, caption_id: str, backbone: str | None = None):
    """(1, in_dim) embedding of one caption (text parquet row with this id)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    root = Path(root)
    backbone = backbone or (find_backbones(root) or [None])[0]
    if backbone is None:
        raise DataError(f"{root}: no embeddings found")
    path = text_file(root, backbone)
    table = pq.read_table(path, columns=["id", "emb"])
    hit = table.filter(pc.equal(table.column("id").cast("string"), str(caption_id)))
    if hit.num_rows == 0:
        raise DataError(f"{path}: no caption with id {caption_id!r}")
    return torch.tensor(hit.column("emb")[0].as_py(), dtype=torch.float32)[None, :]
