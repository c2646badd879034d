"""Text -> image evaluation (METHOD.md, "Evaluation protocol"): every caption of a split is a
query, every image of the split a candidate, the caption's own image the one relevant item."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from training.metrics import chunked_ranks, ranks_of_relevant, retrieval_metrics, sparsity

MODES = ("dense", "sparse", "integrated")


def cat_csr(chunks: list[Tensor]) -> Tensor:
    """Stack CSR matrices with the same number of columns (torch.cat does not take CSR)."""
    crows, offset = [chunks[0].crow_indices()[:1]], 0
    for c in chunks:
        crows.append(c.crow_indices()[1:] + offset)
        offset += c.values().numel()
    cols = torch.cat([c.col_indices() for c in chunks])
    values = torch.cat([c.values() for c in chunks])
    shape = (sum(c.shape[0] for c in chunks), chunks[0].shape[1])
    return torch.sparse_csr_tensor(
        torch.cat(crows), cols, values, size=shape, check_invariants=False
    )


def truncate_topk(weights: Tensor, k: int | None) -> Tensor:
    """Keep each row's k largest weights (B, V) -> (B, V); None keeps everything."""
    if k is None or k >= weights.shape[1]:
        return weights
    top = weights.topk(k, dim=1)
    return torch.zeros_like(weights).scatter_(1, top.indices, top.values)


@dataclass
class EvalVectors:
    """A split encoded for evaluation: queries (Q, dense_dim) / (Q, V) dense, images
    (N, dense_dim) / (N, V) CSR, and each query's relevant image (Q,)."""

    q_dense: Tensor
    q_sparse: Tensor
    docs_dense: Tensor
    docs_sparse: Tensor
    relevant: Tensor

    def dense_block(self, part: slice) -> Tensor:
        return self.q_dense[part] @ self.docs_dense.t()

    def sparse_block(self, part: slice) -> Tensor:
        return (self.docs_sparse @ self.q_sparse[part].t()).t()


@torch.no_grad()
def encode_for_eval(
    heads,
    text_emb: Tensor,
    image_emb: Tensor,
    relevant: Tensor,
    *,
    topk: int | None = None,
    device: str | torch.device = "cpu",
    chunk: int = 1024,
) -> EvalVectors:
    """Run the heads over (Q, in_dim) captions and (N, in_dim) images, in eval mode."""
    was_training = heads.training
    heads.eval()
    heads.to(device)
    img_dense, img_sparse = [], []
    for start in range(0, image_emb.shape[0], chunk):
        x = image_emb[start : start + chunk].to(device, torch.float32)
        d = heads.dense(x, "image")
        img_dense.append(d)
        img_sparse.append(truncate_topk(heads.sparse(d), topk).to_sparse_csr())
    q_dense, q_sparse = [], []
    for start in range(0, text_emb.shape[0], chunk):
        x = text_emb[start : start + chunk].to(device, torch.float32)
        d = heads.dense(x, "text")
        q_dense.append(d)
        q_sparse.append(truncate_topk(heads.sparse(d), topk))
    heads.train(was_training)
    return EvalVectors(
        torch.cat(q_dense),
        torch.cat(q_sparse),
        torch.cat(img_dense),
        cat_csr(img_sparse),
        relevant.to(device),
    )


@torch.no_grad()
def evaluate_embeddings(
    heads,
    text_emb: Tensor,  # (Q, in_dim) pre-projection caption embeddings
    image_emb: Tensor,  # (N, in_dim) pre-projection image embeddings
    relevant: Tensor,  # (Q,) index into image_emb of each caption's image
    *,
    w1: float,
    w2: float,
    topk: int | None = None,
    device: str | torch.device = "cpu",
    chunk: int = 1024,
) -> dict:
    """R@1/5/10 and MRR@10 for dense, sparse and integrated scores, plus sparsity and FLOPs."""
    v = encode_for_eval(heads, text_emb, image_emb, relevant, topk=topk, device=device, chunk=chunk)

    def integrated_block(part: slice) -> Tensor:
        return w1 * v.dense_block(part) + w2 * v.sparse_block(part)

    n = text_emb.shape[0]
    blocks = (v.dense_block, v.sparse_block, integrated_block)
    result = {
        mode: retrieval_metrics(chunked_ranks(fn, v.relevant, n, chunk))
        for mode, fn in zip(MODES, blocks, strict=True)
    }
    result["sparsity"] = sparsity(v.q_sparse.cpu(), v.docs_sparse.cpu())
    return result


@torch.no_grad()
def integrated_sweep(
    v: EvalVectors, weights: list[tuple[float, float]], chunk: int = 1024
) -> list[dict[str, float]]:
    """Integrated-score metrics for each (w1, w2); each score block is computed once."""
    ranks: list[list[Tensor]] = [[] for _ in weights]
    n = v.q_dense.shape[0]
    for start in range(0, n, chunk):
        part = slice(start, min(start + chunk, n))
        dense, sparse, rel = v.dense_block(part), v.sparse_block(part), v.relevant[part]
        for out, (w1, w2) in zip(ranks, weights, strict=True):
            out.append(ranks_of_relevant(w1 * dense + w2 * sparse, rel).cpu())
    return [retrieval_metrics(torch.cat(r)) for r in ranks]


def evaluate_split(
    model,
    dataset,
    split: str = "test",
    *,
    topk: int | None = None,
    device: str = "cpu",
    weights: tuple[float, float] | None = None,
) -> dict:
    """Evaluate a LoadedModel-like object (`heads`, `config.w1/w2`) on a dataset split, with
    `weights` (w1, w2) for the integrated score (default: the training weights)."""
    part = dataset.splits[split]
    w1, w2 = weights if weights is not None else (model.config.w1, model.config.w2)
    return evaluate_embeddings(
        model.heads,
        dataset.texts.emb[part.text_rows],
        dataset.images.emb[part.image_rows],
        part.text_to_image,
        w1=w1,
        w2=w2,
        topk=topk,
        device=device,
    )


def run_record(model, dataset, split: str, *, weights, topk, device) -> dict:
    """What an evaluation ran with: the model (and the switches it was trained with), the data,
    the split, the integrated weights, top-k and the device."""
    from sparse_mm.checkpoint import WEIGHTS, sha256_file

    provenance = model.config.provenance
    return {
        "model": str(Path(model.path).resolve()),
        "weights_sha256": sha256_file(Path(model.path) / WEIGHTS),
        "data": str(Path(dataset.root).resolve()),
        "split": split,
        "w1": weights[0],
        "w2": weights[1],
        "weights_kind": "serving" if weights != (model.config.w1, model.config.w2) else "training",
        "topk": topk,
        "device": str(device),
        "switches": provenance.get("switches", {}),
        "imported_from": provenance.get("imported_from"),
    }


def write_metrics(metrics: dict, path: Path) -> None:
    path.write_text(json.dumps(metrics, indent=2) + "\n")


def format_metrics(metrics: dict) -> str:
    lines = [f"{'mode':<11} {'R@1':>7} {'R@5':>7} {'R@10':>7} {'MRR@10':>7}"]
    for mode in MODES:
        m = metrics[mode]
        recalls = " ".join(f"{100 * m[k]:>7.2f}" for k in ("R@1", "R@5", "R@10"))
        lines.append(f"{mode:<11} {recalls} {m['MRR@10']:>7.4f}")
    s = metrics["sparsity"]
    lines.append(
        f"terms per query {s['query_terms']:.1f}, per image {s['doc_terms']:.1f}, "
        f"FLOPs {s['flops']:.2f}"
    )
    return "\n".join(lines)
