"""The image list that `sparse-mm embed` reads: Karpathy JSON or `{image, caption}` JSONL.

- Karpathy format (METHOD.md, "Inputs"): `{"images": [{"imgid", "filename", ["filepath"],
  "split", "sentences": [{"sentid", "raw", ...}]}]}`; an image's file is
  `IMAGES/filepath/filename` when `filepath` is given (MSCOCO), else `IMAGES/filename`.
- JSONL: one `{"image": <path under IMAGES>, "caption": <text>[, "split": ...]}` per line; the
  lines of one image give its captions. Images without a split are assigned one that depends
  only on the file name: sorted by the sha1 of the name, the first tenth (at least one image)
  is `test`, the next tenth `val`, the rest `train`.
Either way the result is a list of `Item`s, the image ids (`imgid`) and caption ids (`sentid`)
that the embeddings' parquet files use.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from sparse_mm.data import SPLITS
from sparse_mm.errors import DataError


@dataclass(frozen=True)
class Caption:
    id: str  # sentid
    text: str


@dataclass(frozen=True)
class Item:
    id: str  # imgid
    path: str  # relative to the images folder
    split: str
    captions: tuple[Caption, ...]


def read_meta(path: Path) -> list[Item]:
    """Karpathy JSON (a `.json` object with `images`) or JSONL, validated."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    try:
        whole = json.loads(text)
    except json.JSONDecodeError as exc:
        if path.suffix == ".json":
            raise DataError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
        whole = None  # several JSON lines
    if isinstance(whole, dict) and "images" in whole:
        return _karpathy(path, whole)
    if whole is not None and path.suffix == ".json":
        raise DataError(f"{path}: expected a Karpathy-format object with an 'images' list")
    return _jsonl(path, text)


def _karpathy(path: Path, raw: dict) -> list[Item]:
    if not isinstance(raw.get("images"), list):
        raise DataError(f"{path}: 'images' must be a list")
    items, seen = [], set()
    for n, entry in enumerate(raw["images"]):
        where = f"{path}: image entry {n}"
        if not isinstance(entry, dict) or not {"imgid", "filename", "split"} <= set(entry):
            raise DataError(f"{where} lacks 'imgid', 'filename' or 'split'")
        split = entry["split"]
        if split not in SPLITS:
            raise DataError(f"{where} has unknown split {split!r} ({', '.join(SPLITS)})")
        imgid = str(entry["imgid"])
        if imgid in seen:
            raise DataError(f"{where} repeats imgid {imgid}")
        seen.add(imgid)
        captions = []
        for s in entry.get("sentences", []):
            if not isinstance(s, dict) or "sentid" not in s or not isinstance(s.get("raw"), str):
                raise DataError(f"{where}: a sentence lacks 'sentid' or 'raw'")
            captions.append(Caption(str(s["sentid"]), s["raw"]))
        folder = entry.get("filepath")
        file = f"{folder}/{entry['filename']}" if folder else str(entry["filename"])
        items.append(Item(imgid, file, split, tuple(captions)))
    return _checked(path, items)


def _jsonl(path: Path, text: str) -> list[Item]:
    order: list[str] = []
    captions: dict[str, list[str]] = {}
    splits: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: line {n} is not JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("image"), str):
            raise DataError(f"{path}: line {n} needs a string 'image' (and a 'caption')")
        if not isinstance(row.get("caption"), str) or not row["caption"].strip():
            raise DataError(f"{path}: line {n} needs a non-empty string 'caption'")
        image = row["image"]
        if image not in captions:
            order.append(image)
            captions[image] = []
        captions[image].append(row["caption"])
        if "split" in row:
            if row["split"] not in SPLITS:
                raise DataError(f"{path}: line {n} has unknown split {row['split']!r}")
            if splits.setdefault(image, row["split"]) != row["split"]:
                raise DataError(f"{path}: line {n} gives {image} a second split")
    if not order:
        raise DataError(f"{path}: no images listed")
    unassigned = sorted(
        (i for i in order if i not in splits), key=lambda i: hashlib.sha1(i.encode()).digest()
    )
    tenth = max(1, round(len(unassigned) / 10)) if len(unassigned) >= 3 else 0
    for k, image in enumerate(unassigned):
        splits[image] = "test" if k < tenth else "val" if k < 2 * tenth else "train"
    items, sentid = [], 0
    for imgid, image in enumerate(order):
        caps = []
        for text_ in captions[image]:
            caps.append(Caption(str(sentid), text_))
            sentid += 1
        items.append(Item(str(imgid), image, splits[image], tuple(caps)))
    return _checked(path, items)


def _checked(path: Path, items: list[Item]) -> list[Item]:
    if not items:
        raise DataError(f"{path}: no images listed")
    seen: dict[str, str] = {}
    for item in items:
        for c in item.captions:
            if c.id in seen:
                raise DataError(f"{path}: sentid {c.id} appears twice ({seen[c.id]}, {item.id})")
            seen[c.id] = item.id
    return items


def karpathy_meta(items: list[Item]) -> dict:
    """The `dataset_meta.json` of the embedded items (Karpathy format)."""
    return {
        "images": [
            {
                "imgid": item.id,
                "filename": item.path,
                "split": item.split,
                "sentences": [
                    {"sentid": c.id, "raw": c.text, "tokens": c.text.lower().split()}
                    for c in item.captions
                ],
            }
            for item in items
        ]
    }
