"""`sparse-mm data example`: the inputs of the README's "Your own images" section, made here
(no download): a tiny randomly initialised BLIP retrieval checkpoint saved locally, images
drawn with PIL (a coloured shape on a background), their captions in a Karpathy-format meta
file, and a training config sized for them. The tests use the same pieces. Needs the `blip`
extra (transformers, Pillow).

A random backbone aligns nothing: what these inputs show is the commands working, not a
retrieval result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sparse_mm.errors import ModelError

WORDS = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "dog", "on", "the", "beach", "##s",
    "cat", "red", "blue", "green", "car", "in", "snow", "grass", "ball", "sunny", "small",
]  # fmt: skip
HIDDEN = 32
EMBED_DIM = 16  # BLIP's image_text_hidden_size (256 in the released checkpoints)
IMAGE_SIZE = 32


def build_tiny_blip(folder: Path, seed: int = 0):
    """Save a tiny BlipForImageTextRetrieval with its tokenizer and image processor into
    `folder`; return the model (eval mode)."""
    import torch

    try:
        from transformers import (
            BertTokenizer,
            BlipConfig,
            BlipForImageTextRetrieval,
            BlipProcessor,
        )
    except ImportError:
        raise ModelError(
            'the example BLIP needs transformers and Pillow: pip install "sparse-mm[blip]"'
        ) from None

    try:  # transformers >= 5 names the PIL-only processor apart
        from transformers.models.blip.image_processing_pil_blip import (
            BlipImageProcessorPil as ImageProcessor,
        )
    except ImportError:  # pragma: no cover - older transformers
        from transformers import BlipImageProcessor as ImageProcessor

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Writing model shards" for a 1 MB file
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    tokenizer = BertTokenizer(str(folder / "vocab.txt"))
    processor = ImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    BlipProcessor(processor, tokenizer).save_pretrained(str(folder))
    text = {
        "vocab_size": len(WORDS),
        "hidden_size": HIDDEN,
        "encoder_hidden_size": HIDDEN,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 64,
        "pad_token_id": 0,
        "bos_token_id": 2,
        "sep_token_id": 3,
        "eos_token_id": 3,
    }
    vision = {
        "hidden_size": HIDDEN,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "image_size": IMAGE_SIZE,
        "patch_size": 16,
    }
    torch.manual_seed(seed)
    config = BlipConfig(text_config=text, vision_config=vision, image_text_hidden_size=EMBED_DIM)
    model = BlipForImageTextRetrieval(config)
    # every weight drawn here, so that images and texts get distinct embeddings (some
    # transformers versions leave a freshly built vision tower all zeros)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=g) * 0.5
            is_scale = name.endswith("weight") and "norm" in name
            param.copy_(noise + 1.0 if is_scale else noise)
    model.save_pretrained(str(folder))
    return model.eval()


COLOURS = {"red": (220, 30, 30), "blue": (30, 40, 220), "green": (30, 200, 60)}
THINGS = ("dog", "cat", "car", "ball")


def draw_images(folder: Path, n: int, seed: int = 0) -> list[tuple[str, list[str]]]:
    """Draw n images (a coloured shape on a background, sizes vary, PNG and JPEG) into
    `folder`; return (file name, captions) for each."""
    import random

    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        colour = rng.choice(sorted(COLOURS))
        thing = THINGS[i % len(THINGS)]
        size = (rng.randint(24, 64), rng.randint(24, 64))
        picture = Image.new("RGB", size, (rng.randint(0, 255), 200, rng.randint(0, 255)))
        draw = ImageDraw.Draw(picture)
        box = [rng.randint(0, 8), rng.randint(0, 8), size[0] - rng.randint(0, 8), size[1] - 2]
        (draw.ellipse if thing in ("ball", "cat") else draw.rectangle)(box, fill=COLOURS[colour])
        name = f"img{i:03d}.{'png' if i % 2 else 'jpg'}"
        picture.save(folder / name)
        captions = [f"A {colour} {thing} on the grass.", f"a small {thing}; {colour}!"]
        out.append((name, captions))
    return out


def karpathy(drawn: list[tuple[str, list[str]]], splits: dict[str, int]) -> dict:
    """A Karpathy-format meta object for drawn images: the first splits['test'] images are
    test, then val, the rest train."""
    images, sentid = [], 100
    n_test, n_val = splits.get("test", 0), splits.get("val", 0)
    for i, (name, captions) in enumerate(drawn):
        split = "test" if i < n_test else "val" if i < n_test + n_val else "train"
        sentences = []
        for c in captions:
            sentences.append({"sentid": sentid, "raw": c, "tokens": c.lower().split()})
            sentid += 1
        images.append({"imgid": 1000 + i, "filename": name, "split": split, "sentences": sentences})
    return {"images": images}


# the training config of the example: 10 epochs of batches of 16, a larger learning rate and
# L1 weights than the paper's (a few hundred captions, not 400k); sizes come from the data
TINY_CONFIG = {"train_batch_size": 16, "epochs": 10, "lr": 1e-3, "q_reg": 1e-3, "d_reg": 1e-3}


@dataclass(frozen=True)
class Example:
    out: Path
    images: int
    splits: dict[str, int]

    def describe(self) -> str:
        counts = ", ".join(f"{n} {split}" for split, n in self.splits.items())
        return (
            f"wrote an example to {self.out}: blip/ (a tiny RANDOM BLIP checkpoint, "
            f"{HIDDEN}-d, {len(WORDS)} tokens), images/ ({self.images} drawn images: {counts}), "
            "meta.json (their captions) and tiny.json (a training config)"
        )


def write_example(out: Path, n_images: int = 200, seed: int = 0) -> Example:
    """Write blip/, images/, meta.json and tiny.json into `out` (a tenth of the images test,
    a tenth val, the rest train)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    build_tiny_blip(out / "blip", seed=seed)
    drawn = draw_images(out / "images", n_images, seed=seed)
    splits = {"test": n_images // 10, "val": n_images // 10}
    (out / "meta.json").write_text(json.dumps(karpathy(drawn, splits), indent=1) + "\n")
    (out / "tiny.json").write_text(json.dumps(TINY_CONFIG, indent=2) + "\n")
    return Example(out, n_images, {**splits, "train": n_images - sum(splits.values())})
