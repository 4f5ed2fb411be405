"""Label accuracy of a conditional generator: how often a classifier assigns samples the label they were drawn for.

For a class-conditional GAN, samples generated for label ``k`` should be recognised as
``k`` by a classifier of real data (the shipped ``mnist`` or ``fsdd`` classifier). Reported
overall and per requested label; a generator that ignores its labels scores chance
(``1 / K`` for balanced labels).
"""

from __future__ import annotations

from typing import Sequence

import torch


def label_accuracy(
    predicted: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str] | None = None
) -> dict[str, float]:
    """Share of ``predicted == labels``, overall and per label.

    Args:
        predicted: ``int [N]`` class index each sample was classified as.
        labels: ``int [N]`` class index each sample was drawn for (the same index space).
        class_names: a name per class index (per-label keys); default the indices.

    Returns:
        ``{"accuracy": overall, "accuracy/<name>": per label, ...}`` for every label present in
        ``labels``, in index order.

    Raises:
        ValueError: empty input, or shapes that differ.
    """
    predicted, labels = torch.as_tensor(predicted).long().flatten(), torch.as_tensor(labels).long().flatten()
    if len(labels) == 0:
        raise ValueError("accuracy needs at least one labelled sample")
    if predicted.shape != labels.shape:
        raise ValueError(f"{len(predicted)} predictions for {len(labels)} labels")
    correct = (predicted == labels).double()
    scores = {"accuracy": float(correct.mean())}
    for k in torch.unique(labels).tolist():
        name = class_names[k] if class_names is not None and 0 <= k < len(class_names) else str(k)
        scores[f"accuracy/{name}"] = float(correct[labels == k].mean())
    return scores


__all__ = ["label_accuracy"]
