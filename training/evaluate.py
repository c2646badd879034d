"""Text -> image evaluation (METHOD.md, "Evaluation protocol"): every caption of a split is a
query, every image of the split a candidate, the caption's own image the one relevant item."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

from training.metrics import chunked_ranks, retrieval_metrics, sparsity

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
    was_training = heads.training
    heads.eval()
    heads.to(device)
    img_dense, img_sparse = [], []
    for start in range(0, image_emb.shape[0], chunk):
        x = image_emb[start : start + chunk].to(device, torch.float32)
        d = heads.dense(x, "image")
        img_dense.append(d)
        img_sparse.append(truncate_topk(heads.sparse(d), topk).to_sparse_csr())
    docs_dense = torch.cat(img_dense)
    docs_sparse = cat_csr(img_sparse)
    q_dense, q_sparse = [], []
    for start in range(0, text_emb.shape[0], chunk):
        x = text_emb[start : start + chunk].to(device, torch.float32)
        d = heads.dense(x, "text")
        q_dense.append(d)
        q_sparse.append(truncate_topk(heads.sparse(d), topk))
    q_dense_all, q_sparse_all = torch.cat(q_dense), torch.cat(q_sparse)

    def dense_block(part: slice) -> Tensor:
        return q_dense_all[part] @ docs_dense.t()

    def sparse_block(part: slice) -> Tensor:
        return (docs_sparse @ q_sparse_all[part].t()).t()

    def integrated_block(part: slice) -> Tensor:
        return w1 * dense_block(part) + w2 * sparse_block(part)

    relevant = relevant.to(device)
    n = text_emb.shape[0]
    result = {
        mode: retrieval_metrics(chunked_ranks(fn, relevant, n, chunk))
        for mode, fn in zip(MODES, (dense_block, sparse_block, integrated_block), strict=True)
    }
    result["sparsity"] = sparsity(q_sparse_all.cpu(), docs_sparse.cpu())
    heads.train(was_training)
    return result


def evaluate_split(
    model, dataset, split: str = "test", *, topk: int | None = None, device: str = "cpu"
) -> dict:
    """Evaluate a LoadedModel-like object (`heads`, `config.w1/w2`) on a dataset split."""
    part = dataset.splits[split]
    return evaluate_embeddings(
        model.heads,
        dataset.texts.emb[part.text_rows],
        dataset.images.emb[part.image_rows],
        part.text_to_image,
        w1=model.config.w1,
        w2=model.config.w2,
        topk=topk,
        device=device,
    )


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
