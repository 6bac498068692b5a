"""Batches: unpacking ``(x, targets)``, moving them to a device, and running a model over
a loader with its predictions gathered per head group.

A batch is ``(x, targets)``, ``[x, targets]`` or ``{"x": x, "y": targets}`` (targets as
:mod:`taskgraph.model.targets` reads them), or, where no targets are needed, ``x``
alone. ``fit``, ``evaluate``, the reliability diagrams and the HMC recipe all loop
through :func:`iter_batches`; the last three gather with :func:`predict_loader`.

Example:
    >>> import torch, taskgraph as tg
    >>> model = tg.compile("hierarchies/animals.yaml", in_features=3, task_dim=4)
    >>> Y = torch.tensor([[1., 0., 2., 5.], [0., -1., -1., float("nan")]])
    >>> groups = predict_loader(model, [(torch.randn(2, 3), Y)])
    >>> [(g.group.kind, g.mean.shape, g.target.shape) for g in groups]
    [('binary', (2, 1), (2, 1, 1)), ('multiclass', (2, 1, 3), (2, 1, 1)), \
('multiclass', (2, 1, 4), (2, 1, 1)), ('regression', (2, 1, 1), (2, 1, 1))]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import torch
from torch import Tensor

from taskgraph.errors import DataError, TaskGraphError
from taskgraph.model.layout import HeadGroup
from taskgraph.model.targets import check_targets, target_blocks

__all__ = ["split_batch", "to_device", "iter_batches", "predict_loader", "GroupPredictions"]

_CPU = torch.device("cpu")


def split_batch(batch: Any) -> tuple[Any, Any]:
    """``(x, targets)`` from a batch: a pair / list, or a dict with ``"x"`` and ``"y"``.

    >>> split_batch({"x": 1, "y": 2}), split_batch((1, 2)), split_batch({"x": 1})
    ((1, 2), (1, 2), (1, None))
    """
    if isinstance(batch, Mapping) and "x" in batch:
        return batch["x"], batch.get("y")
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise DataError(f"a batch must be (x, targets) or {{'x': ..., 'y': ...}}, got "
                    f"{type(batch).__name__}" + (f" of length {len(batch)}"
                                                 if isinstance(batch, (tuple, list)) else ""))


def to_device(value: Any, device: torch.device) -> Any:
    """Move tensors (also inside dicts, lists and tuples) to ``device``.

    >>> to_device({"a": [torch.zeros(1)], "b": 3}, torch.device("cpu"))
    {'a': [tensor([0.])], 'b': 3}
    """
    if isinstance(value, Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, Mapping):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value


def iter_batches(loader: Iterable[Any], device: torch.device, *, who: str,
                 targets: bool = True, move_targets: bool = True
                 ) -> Iterator[tuple[Any, Any]]:
    """``(x, targets)`` of every batch of ``loader``, moved to ``device``.

    Args:
        loader: the batches.
        device: where they go.
        who: the caller, for messages (``"evaluate"``).
        targets: every batch must carry targets; with ``False`` a batch may be ``x``
            alone (a tensor), and ``targets`` is then ``None``.
        move_targets: move the targets too (``False``: they stay where they are).

    Raises:
        DataError: a batch of another form, a batch without targets, or no batch at all.
    """
    count = 0
    for batch in loader:
        if not targets and isinstance(batch, Tensor):
            x, y = batch, None
        else:
            x, y = split_batch(batch)
        if targets and y is None:
            raise DataError(f"{who}: batch {count} has no targets (expected (x, targets) "
                            f"batches)")
        count += 1
        yield to_device(x, device), to_device(y, device) if move_targets else y
    if count == 0:
        raise DataError(f"{who}: the loader yielded no batches")


@dataclass
class GroupPredictions:
    """One head group's predictions over a loader, as NumPy arrays on the CPU.

    Attributes:
        group: the :class:`~taskgraph.model.layout.HeadGroup`.
        mean: probabilities (or values, in the targets' units): ``(N, T_g)`` for binary,
            ``(N, T_g, W)`` otherwise; the Monte-Carlo mean with ``samples > 0``.
        target: ``(N, T_g, w)`` targets, NaN where missing (``None`` without targets).
        label: ``(N, T_g)`` the model's labels, for types whose labels are decoded
            jointly (multiclass), else ``None``.
        entropy, mutual_info: per task the mean over the N examples of the predictive
            entropy and mutual information (``(T_g,)``, ``(T_g, K)`` for multilabel), for
            probabilistic types with ``samples > 0``, else ``None``.
        mutual_info_examples, std_examples: the per-example mutual information and std
            of the probabilities (``(N, T_g)``, ``(N, T_g, K)`` for multilabel and
            multiclass std), under the same condition, else ``None``.
    """

    group: HeadGroup
    mean: np.ndarray
    target: np.ndarray | None = None
    label: np.ndarray | None = None
    entropy: np.ndarray | None = None
    mutual_info: np.ndarray | None = None
    mutual_info_examples: np.ndarray | None = None
    std_examples: np.ndarray | None = None


class _Gather:
    """Running lists (and uncertainty sums) of one group."""

    def __init__(self, group: HeadGroup, uncertainty: bool) -> None:
        self.group, self.kind = group, group.task_type
        self.uncertainty = uncertainty and self.kind.probabilistic
        self.mean: list[Tensor] = []
        self.target: list[Tensor] = []
        self.label: list[Tensor] = []
        self.entropy: Tensor | float = 0.0
        self.mi: Tensor | float = 0.0
        self.mi_rows: list[Tensor] = []
        self.std_rows: list[Tensor] = []

    def add(self, block: dict[str, Tensor], target: Tensor | None, who: str) -> None:
        if not bool(torch.isfinite(block["mean"]).all()):
            raise TaskGraphError(f"{who}: the model's predictions for task(s) "
                                 f"{', '.join(self.group.names[:3])} are not finite (NaN or "
                                 "inf): the model has diverged; retrain it with a lower "
                                 "learning rate")
        self.mean.append(block["mean"].float().cpu())
        if target is not None:
            self.target.append(target)
        if self.kind.joint_decoding:
            self.label.append(block["label"].cpu())
        if self.uncertainty:
            self.entropy = self.entropy + block["entropy"].double().sum(0).cpu()
            self.mi = self.mi + block["mi"].double().sum(0).cpu()
            self.mi_rows.append(block["mi"].float().cpu())
            self.std_rows.append(block["std"].float().cpu())

    def result(self) -> GroupPredictions:
        mean = torch.cat(self.mean).numpy()
        out = GroupPredictions(self.group, mean)
        if self.target:
            out.target = torch.cat(self.target).numpy()
            check_targets(self.group, out.target, hard=True)  # scoring: 0 or 1
        if self.label:
            out.label = torch.cat(self.label).numpy()
        if self.uncertainty:
            n = max(mean.shape[0], 1)
            out.entropy, out.mutual_info = self.entropy.numpy() / n, self.mi.numpy() / n
            out.mutual_info_examples = torch.cat(self.mi_rows).double().numpy()
            out.std_examples = torch.cat(self.std_rows).double().numpy()
        return out


@torch.no_grad()
def predict_loader(model: Any, loader: Iterable[Any], *, samples: int = 0,
                   targets: bool = True, who: str = "evaluate",
                   dropout: bool | None = None) -> list[GroupPredictions]:
    """Run ``model.predict`` over every batch of ``loader``; gather per head group.

    Args:
        model: a :class:`~taskgraph.TaskGraphModel` or an
            :class:`~taskgraph.model.ensemble.Ensemble` (inputs go to its device).
        loader: batches (module docstring).
        samples: Monte-Carlo samples per example (0: expected synapse weights).
        dropout: what the samples are: ``True`` MC dropout, ``False`` synapse draws,
            ``None`` (default) MC dropout where the model has dropout
            (:func:`~taskgraph.model.predict.predict`).
        targets: gather the batches' targets (and require them); their values are
            checked as scoring needs them: class labels 0 or 1, class indices in range.
        who: the caller, for messages.

    Returns:
        One :class:`GroupPredictions` per head group, in ``model.layout.groups`` order.

    Raises:
        DataError: a batch without targets, a bad target, or an empty loader.
        TaskGraphError: the model's predictions are not finite (it has diverged).
        ArgumentError: ``dropout=True`` with ``samples=0`` or a model without dropout.
    """
    device = next(model.parameters(), torch.empty(0)).device
    layout = model.layout
    gathers = [_Gather(group, samples > 0) for group in layout.groups]
    for x, y in iter_batches(loader, device, who=who, targets=targets, move_targets=False):
        pred = model.predict(x, samples=samples, dropout=dropout)
        B = pred.blocks[0]["mean"].shape[0]
        blocks = target_blocks(layout, y, B, _CPU) if targets else [None] * len(gathers)
        for gather, block, target in zip(gathers, pred.blocks, blocks):
            gather.add(block, target, who)
    return [gather.result() for gather in gathers]
