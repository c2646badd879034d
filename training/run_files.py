"""What a training run writes: the model directory (the best epoch, and `last/` for resuming),
the resume state beside `last/`'s model, and the query encoder the data describes.

The resume state is tensors, numbers, strings and plain containers only, and is read with
`torch.load(weights_only=True)`: a crafted run folder cannot run code through it.
"""

from __future__ import annotations

import json
import pickle
import tempfile
from pathlib import Path

import torch

from sparse_mm.checkpoint import SERVING, save_model
from sparse_mm.errors import ConfigError

STATE_FILE = "trainer_state.pt"


def save_model_files(target: Path, heads, vocab, config, data_root: Path) -> None:
    """Write the model files into `target` (which may hold other files: last/, the log), each
    file replaced whole; serving.json is removed (it was tuned for other weights)."""
    (target / SERVING).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        staging = Path(tmp) / "model"
        save_model(staging, heads, vocab, config)
        write_query_encoder(data_root, staging)
        for path in staging.iterdir():
            path.replace(target / path.name)


def save_state(folder: Path, state: dict) -> None:
    """Write the resume state into `folder` (a temporary file, then one rename)."""
    partial = folder / (STATE_FILE + ".tmp")
    torch.save(state, partial)
    partial.replace(folder / STATE_FILE)


def load_state(folder: Path, device) -> dict:
    """The resume state in `folder`, read without executing pickled code (one-line errors)."""
    path = folder / STATE_FILE
    if not path.exists():
        raise ConfigError(f"nothing to resume in {folder.parent} (no {folder.name}/{STATE_FILE})")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(
            f"{path} holds more than tensors and numbers ({first[:120]}); refusing to load it "
            "(a resume state is never code): train again with --overwrite"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise ConfigError(f"{path} is not a readable resume state ({exc})") from None


def write_query_encoder(data_root: Path, model_dir: Path) -> None:
    """Give the model the data's query encoder when it has one: the synthetic corpus' own, or
    the one `sparse-mm embed` describes in query_encoder.json (the BLIP text tower)."""
    described = Path(data_root) / "query_encoder.json"
    if described.exists():
        desc = json.loads(described.read_text())
    elif (Path(data_root) / "synthetic.json").exists():
        from sparse_mm.synth import SyntheticTextEncoder

        desc = SyntheticTextEncoder.from_corpus(data_root).save(model_dir)
    else:
        return
    config_path = model_dir / "config.json"
    config = json.loads(config_path.read_text())
    config["query_encoder"] = desc
    config_path.write_text(json.dumps(config, indent=2) + "\n")
