"""The tiny random BLIP checkpoint and drawn images of `sparse-mm data example`
(sparse_mm/example.py), for the tests of the BLIP query encoder, `embed`, and the "your own
images" path. Needs the `blip` extra (transformers, Pillow)."""

from __future__ import annotations

from sparse_mm.example import (  # noqa: F401  (re-exported for the tests)
    COLOURS,
    EMBED_DIM,
    HIDDEN,
    IMAGE_SIZE,
    THINGS,
    WORDS,
    build_tiny_blip,
    draw_images,
    karpathy,
)
