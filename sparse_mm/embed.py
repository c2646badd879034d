"""Raw images and captions -> the paper's data layout, with a BLIP retrieval checkpoint.

    image embedding    vision_model(pixels).last_hidden_state[:, 0]   (before vision_proj)
    caption embedding  text_encoder(tokens).last_hidden_state[:, 0]   (before text_proj),
                       captions cleaned and tokenised as BLIP's retrieval code does
                       (sparse_mm.encoders.blip_text_cls, max 35 tokens)

`embed_collection` writes into OUT: img_embs_before_proj_blip.parquet,
text_embs_before_proj_blip.parquet, dataset_meta.json, and from the same checkpoint vocab.txt
(the tokenizer's tokens in id order), word_embeddings.safetensors (the text encoder's word
embeddings (V, hidden)) and init_projection.safetensors (text_proj, vision_proj), so that
`sparse-mm train` starts where the paper starts; plus query_encoder.json (the trained model's
query encoder is this checkpoint's text tower) and embed.json (what was run).

Resumable: every batch is an atomically written parquet shard in OUT/.embed-parts; a re-run
embeds only the images and captions that no shard holds, so nothing is embedded twice or lost.
Images that cannot be read are reported by file name and the rest embedded; the collection is
finalised (shards merged, the parts folder removed) once every image is embedded, or with
`skip_bad` without the unreadable ones.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sparse_mm.checkpoint import sha256_file
from sparse_mm.data import image_file, text_file, write_embeddings
from sparse_mm.embed_meta import Item, karpathy_meta, read_meta
from sparse_mm.encoders import blip_text_cls, load_blip
from sparse_mm.errors import DataError, ModelError

BACKBONE = "blip"
PARTS = ".embed-parts"
JOB = "job.json"


@dataclass
class EmbedOptions:
    batch_size: int = 32
    device: str = "cpu"
    skip_bad: bool = False
    max_length: int = 35
    progress: bool = True


@dataclass
class EmbedReport:
    out: Path
    images: int  # embedded images in the collection (this run and earlier ones)
    captions: int
    embedded_now: int  # images embedded by this run
    bad: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    finalised: bool = False

    def describe(self) -> str:
        state = "written to" if self.finalised else "NOT finalised, parts kept in"
        return (
            f"{self.images} images ({self.embedded_now} embedded by this run) and "
            f"{self.captions} captions; {len(self.bad)} unreadable; {state} {self.out}"
        )


def embed_collection(
    backbone: Path,
    images_dir: Path,
    meta: Path,
    out: Path,
    options: EmbedOptions,
    on_loaded: Callable[[], None] = lambda: None,
) -> EmbedReport:
    """Embed every image and caption that `meta` lists (see the module doc); `on_loaded()`
    once the inputs are checked and the checkpoint is loaded."""
    images_dir, out = Path(images_dir), Path(out)
    if images_dir.exists() and not images_dir.is_dir():
        raise DataError(f"image folder {images_dir} is a file; give the folder of the images")
    if not images_dir.is_dir():
        raise DataError(f"image folder {images_dir} does not exist")
    if options.batch_size < 1:
        raise DataError(f"batch size must be positive, got {options.batch_size}")
    items = read_meta(meta)
    parts = out / PARTS
    if (out / "dataset_meta.json").exists() and not parts.exists():
        raise DataError(f"{out} already holds an embedded collection; choose another --out")
    model, tokenizer, processor = load_blip(backbone, images=True)
    text_dim = int(model.config.text_config.hidden_size)
    if int(model.config.vision_config.hidden_size) != text_dim:
        raise ModelError(f"{backbone}: vision and text hidden sizes differ; the layout needs one")
    model.to(options.device)
    on_loaded()
    _start_job(parts, backbone, meta, options)

    done_images = _shard_ids(parts, "img")
    todo = [item for item in items if item.id not in done_images]
    bad: list[tuple[str, str]] = []
    for batch in _batches(todo, options.batch_size, options.progress, "images", len(items)):
        pixels, ids = _load_images(batch, images_dir, processor, bad)
        if ids:
            with torch.inference_mode():
                states = model.vision_model(pixel_values=pixels.to(options.device))
            _write_shard(parts, "img", ids, states.last_hidden_state[:, 0, :].float().cpu())
    embedded = _shard_ids(parts, "img")
    done_captions = _shard_ids(parts, "txt")
    captions = [
        c
        for item in items
        if item.id in embedded
        for c in item.captions
        if c.id not in done_captions
    ]
    text_encoder = model.text_encoder
    for batch in _batches(captions, options.batch_size, options.progress, "captions", None):
        vectors = blip_text_cls(
            text_encoder, tokenizer, [c.text for c in batch], options.max_length, options.device
        )
        _write_shard(parts, "txt", [c.id for c in batch], vectors)

    kept = [item for item in items if item.id in embedded]
    report = EmbedReport(
        out,
        len(kept),
        sum(len(i.captions) for i in kept),
        len(embedded) - len(done_images),
        bad,
    )
    if bad and not options.skip_bad:
        return report
    _finalise(out, parts, kept, model, tokenizer, backbone, bad, options)
    report.finalised = True
    return report


def _start_job(parts: Path, backbone: Path, meta: Path, options: EmbedOptions) -> None:
    """Record what the parts are embeddings of; a re-run must ask for the same."""
    job = {
        "backbone": str(Path(backbone).resolve()) if Path(backbone).exists() else str(backbone),
        "meta_sha256": sha256_file(meta),
        "max_length": options.max_length,
    }
    path = parts / JOB
    if path.exists():
        before = json.loads(path.read_text())
        if before != job:
            changed = ", ".join(k for k in job if before.get(k) != job[k])
            raise DataError(
                f"{parts.parent} holds an interrupted embed with another {changed}; "
                "re-run with the same inputs or choose another --out"
            )
        return
    parts.mkdir(parents=True, exist_ok=True)
    _atomic_text(path, json.dumps(job, indent=2) + "\n")


def _batches(rows: list, size: int, progress: bool, unit: str, total: int | None) -> Iterator:
    from tqdm import tqdm

    done = 0 if total is None else total - len(rows)
    with tqdm(
        total=len(rows) + done,
        initial=done,
        unit=unit[:-1],
        desc=f"embed {unit}",
        disable=None if progress else True,
    ) as bar:
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            yield batch
            bar.update(len(batch))


def _load_images(batch: list[Item], images_dir: Path, processor, bad: list):
    """(pixel tensor (n, 3, h, w), ids) of the readable images; the rest go to `bad`."""
    from PIL import Image, UnidentifiedImageError

    pictures, ids = [], []
    for item in batch:
        path = images_dir / item.path
        try:
            with Image.open(path) as picture:
                pictures.append(picture.convert("RGB"))
            ids.append(item.id)
        except FileNotFoundError:
            bad.append((item.path, "file not found"))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            bad.append((item.path, f"unreadable image ({type(exc).__name__})"))
    if not pictures:
        return None, []
    return processor(images=pictures, return_tensors="pt")["pixel_values"], ids


def _shard_ids(parts: Path, kind: str) -> set[str]:
    import pyarrow.parquet as pq

    ids: set[str] = set()
    for shard in sorted(parts.glob(f"{kind}-*.parquet")):
        ids.update(str(v) for v in pq.read_table(shard, columns=["id"]).column("id").to_pylist())
    return ids


def _write_shard(parts: Path, kind: str, ids: list[str], vectors: torch.Tensor) -> None:
    number = 1 + max(
        (int(p.stem.split("-")[1]) for p in parts.glob(f"{kind}-*.parquet")), default=0
    )
    final = parts / f"{kind}-{number:06d}.parquet"
    tmp = parts / f".{final.name}.tmp"
    write_embeddings(tmp, ids, vectors.numpy())
    os.replace(tmp, final)  # a shard exists complete or not at all


def _merge(parts: Path, kind: str, target: Path, wanted: set[str]) -> None:
    """Stream the shards into one parquet file (one row group per shard), rows in `wanted`."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tmp = target.with_name(f".{target.name}.tmp")
    writer = None
    try:
        for shard in sorted(parts.glob(f"{kind}-*.parquet")):
            table = pq.read_table(shard)
            table = table.filter(pc.is_in(table.column("id"), value_set=_string_array(wanted)))
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    os.replace(tmp, target)


def _string_array(values: set[str]):
    import pyarrow as pa

    return pa.array(sorted(values), pa.string())


def _finalise(out, parts, kept, model, tokenizer, backbone, bad, options) -> None:
    from safetensors.torch import save_file

    if not kept:
        raise DataError("no image could be embedded")
    _merge(parts, "img", image_file(out, BACKBONE), {i.id for i in kept})
    _merge(parts, "txt", text_file(out, BACKBONE), {c.id for i in kept for c in i.captions})
    vocab_size = int(model.config.text_config.vocab_size)
    if len(tokenizer) != vocab_size:
        raise ModelError(
            f"{backbone}: the tokenizer has {len(tokenizer)} tokens, the text encoder "
            f"{vocab_size} word embeddings; the sparse head needs one row per token"
        )
    tokens = tokenizer.convert_ids_to_tokens(list(range(vocab_size)))
    _atomic_text(out / "vocab.txt", "".join(f"{t}\n" for t in tokens))
    weight = model.text_encoder.get_input_embeddings().weight.detach().float().cpu()
    save_file({"weight": weight.contiguous()}, str(out / "word_embeddings.safetensors"))
    projection = {
        f"{name}.{p}": getattr(getattr(model, name), p).detach().float().cpu().contiguous()
        for name in ("text_proj", "vision_proj")
        for p in ("weight", "bias")
    }
    save_file(projection, str(out / "init_projection.safetensors"))
    job = json.loads((parts / JOB).read_text())
    encoder = {"type": "blip", "name": job["backbone"], "max_length": options.max_length}
    _atomic_text(out / "query_encoder.json", json.dumps(encoder, indent=2) + "\n")
    record = {
        **job,
        "images": len(kept),
        "captions": sum(len(i.captions) for i in kept),
        "left_out": [{"file": f, "reason": r} for f, r in bad],
        "image_embedding": "vision_model last_hidden_state[:, 0] (before vision_proj)",
        "caption_embedding": "text_encoder last_hidden_state[:, 0] (before text_proj)",
    }
    _atomic_text(out / "embed.json", json.dumps(record, indent=2) + "\n")
    # the meta file last: its presence marks a finished collection
    _atomic_text(out / "dataset_meta.json", json.dumps(karpathy_meta(kept)) + "\n")
    for path in parts.iterdir():
        path.unlink()
    parts.rmdir()


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
