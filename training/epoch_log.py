"""What a training run says about each epoch: its line in `train_log.jsonl` and its line of
progress (validation metrics: the split training selects the model on)."""

from __future__ import annotations


def epoch_record(
    epoch: int, parts: dict, metrics: dict, state: dict, eligible: bool, improved: bool
) -> dict:
    """The JSON line of one epoch: mean loss parts, `state` (tau, lr), sparsity and the
    validation metrics, whether it was eligible for selection and whether it became the model."""
    sp = metrics["sparsity"]
    return {
        "epoch": epoch,
        **{k: round(v, 6) for k, v in parts.items()},
        **state,
        "query_terms": sp["query_terms"],
        "doc_terms": sp["doc_terms"],
        "flops": sp["flops"],
        "eligible": eligible,
        "val": metrics,
        "best": improved,
    }


def epoch_line(epoch: int, parts: dict, metrics: dict, improved: bool) -> str:
    """`epoch N: loss ..., val R@1 dense ... sparse ... integrated ...; terms ...` (* = kept)."""
    sp = metrics["sparsity"]
    return (
        f"epoch {epoch}: loss {parts['loss']:.4f}, val R@1 dense "
        f"{metrics['dense']['R@1']:.4f} sparse {metrics['sparse']['R@1']:.4f} integrated "
        f"{metrics['integrated']['R@1']:.4f}; terms per query {sp['query_terms']:.1f}, "
        f"per image {sp['doc_terms']:.1f}, FLOPs {sp['flops']:.2f}" + (" *" if improved else "")
    )
