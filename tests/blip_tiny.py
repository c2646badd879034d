"""A tiny randomly initialised BLIP retrieval checkpoint, saved locally (no download), and
images drawn with PIL: for the tests of the BLIP query encoder, `embed`, and the "your own
images" path. Needs the `blip` extra (transformers, Pillow)."""

from __future__ import annotations

from pathlib import Path

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
    from transformers import BertTokenizer, BlipConfig, BlipForImageTextRetrieval, BlipProcessor

    try:  # transformers >= 5 names the PIL-only processor apart
        from transformers.models.blip.image_processing_pil_blip import (
            BlipImageProcessorPil as ImageProcessor,
        )
    except ImportError:  # pragma: no cover - older transformers
        from transformers import BlipImageProcessor as ImageProcessor

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
