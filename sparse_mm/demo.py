"""The bundled demo: a small synthetic corpus (regenerated from its recipe on first use) and a
small model trained on it (shipped in sparse_mm/demo/model)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from sparse_mm.errors import ModelError

DEMO_SEED = 7
DEMO_IMAGES = 10000
DEMO_VERSION = 1
MODEL_DIR = Path(__file__).resolve().parent / "demo" / "model"


def cache_dir() -> Path:
    return Path(os.environ.get("SPARSE_MM_CACHE", Path.home() / ".cache" / "sparse-mm"))


def demo_data_dir() -> Path:
    """The demo corpus, generated deterministically on first use (a few seconds)."""
    from sparse_mm.synth import SynthParams, synthesize

    target = cache_dir() / f"demo-data-v{DEMO_VERSION}"
    if (target / "synthetic.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".demo-data-", dir=target.parent))
    try:
        synthesize(staging, SynthParams(seed=DEMO_SEED, n_images=DEMO_IMAGES))
        try:
            staging.rename(target)
        except OSError:  # another process finished first; use its copy
            if not (target / "synthetic.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def demo_model_dir() -> Path:
    if not (MODEL_DIR / "config.json").exists():
        raise ModelError(
            f"the bundled demo model is missing from {MODEL_DIR}; train it with "
            "`python -m training.demo_model`"
        )
    return MODEL_DIR
