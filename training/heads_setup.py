"""The heads a training run starts from: their sizes (from the config, else from the data) and
their initial weights (the backbone's projections and word embeddings, METHOD.md "Model").

The reference trains 768 -> 256 heads whose sparse hidden layer is 768 wide (tied to BERT's
word embeddings). Other backbones (BLIP large, a small test BLIP) have other widths: when the
config leaves `dense_dim` / `hidden_dim` unset they are read from the data's initialisation
files, and a config value that contradicts those files is refused naming the config key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from sparse_mm.errors import ConfigError
from sparse_mm.model import HeadsConfig, SparseDenseHeads
from training.config import TrainConfig

REFERENCE_DENSE_DIM = 256  # the released heads' dense width, when the data does not say
INIT_PROJECTION = "init_projection.safetensors"
WORD_EMBEDDINGS = "word_embeddings.safetensors"


def resolve_sizes(config: TrainConfig, dataset) -> tuple[TrainConfig, str | None]:
    """`config` with `dense_dim` and `hidden_dim` set, and a one-line note when a size was
    taken from the data and differs from the reference's (256 dense, hidden = 768).

    dense_dim: the initial projection's rows, else 256; hidden_dim: the word embeddings'
    columns, else the embeddings' width (the backbone's hidden size)."""
    in_dim = int(dataset.images.emb.shape[1])
    projection = dataset.init_projection
    words = dataset.word_embeddings
    data_dense = int(projection["text_proj.weight"].shape[0]) if projection is not None else None
    data_hidden = int(words.shape[1]) if words is not None else None
    dense = _pick(config.dense_dim, data_dense, "dense_dim", dataset, INIT_PROJECTION, "rows")
    hidden = _pick(
        config.hidden_dim, data_hidden, "hidden_dim", dataset, WORD_EMBEDDINGS, "columns"
    )
    dense = dense if dense is not None else REFERENCE_DENSE_DIM
    hidden = hidden if hidden is not None else in_dim
    taken = []
    if config.dense_dim is None and dense != REFERENCE_DENSE_DIM:
        taken.append(f"dense_dim {dense} ({INIT_PROJECTION})")
    if config.hidden_dim is None and hidden != 768:
        source = WORD_EMBEDDINGS if data_hidden is not None else "the embeddings' width"
        taken.append(f"hidden_dim {hidden} ({source})")
    note = None
    if taken:
        note = (
            f"note: the heads' sizes come from {dataset.root}: {', '.join(taken)}, "
            f"not the reference's 768 -> 256; set them in the config to override"
        )
    return dataclasses.replace(config, dense_dim=dense, hidden_dim=hidden), note


def _pick(configured, from_data, key: str, dataset, file: str, axis: str):
    if configured is not None and from_data is not None and configured != from_data:
        raise ConfigError(
            f"the config sets {key} {configured} but {dataset.root}/{file} has {from_data} "
            f"{axis}; set {key} to {from_data} or leave it out of the config"
        )
    return configured if configured is not None else from_data


def build_heads(
    dataset, config: TrainConfig, vocab_size: int, warn: Callable[[str], None]
) -> SparseDenseHeads:
    """Heads of `config`'s sizes (resolved by `resolve_sizes`), seeded by `config.seed`, with
    the backbone's projections and word embeddings copied in when the data has them."""
    heads = SparseDenseHeads(
        HeadsConfig(
            vocab_size=vocab_size,
            in_dim=int(dataset.images.emb.shape[1]),
            dense_dim=config.dense_dim,
            hidden_dim=config.hidden_dim,
        ),
        seed=config.seed,
    )
    missing = [
        name
        for name, value in (
            (INIT_PROJECTION, dataset.init_projection),
            (WORD_EMBEDDINGS, dataset.word_embeddings),
        )
        if value is None
    ]
    if missing:
        warn(
            f"warning: {dataset.root} has no {' or '.join(missing)}: those layers start "
            "from random weights (the paper initialises both from the backbone)"
        )
    heads.init_from(
        init_projection=dataset.init_projection, word_embeddings=dataset.word_embeddings
    )
    return heads


def freeze_dense(heads: SparseDenseHeads, config: TrainConfig) -> None:
    """D2S and the freeze-dense ablation keep the dense projections at their initial weights."""
    frozen = config.freeze_dense or config.method == "d2s"
    for proj in (heads.text_proj, heads.vision_proj):
        proj.requires_grad_(not frozen)
