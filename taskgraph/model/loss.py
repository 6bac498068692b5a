r"""The multi-task loss: masked per-task losses, task weights, and the ELBO's KL term.

.. math::
    \mathcal{L} = \frac{\sum_t w_t \bar\ell_t}{\sum_{t:\,n_t > 0} w_t}
                + \beta\,\frac{\mathrm{KL}(q \,\|\, p)}{N}

:math:`\bar\ell_t` is task :math:`t`'s loss averaged over the :math:`n_t` examples of
the batch that carry its label (binary and multilabel: BCE; multiclass: cross-entropy;
regression: MSE in standardized units, below); :math:`N` is the data-set size. Missing
labels: ``-1`` (or NaN) for class tasks, NaN for regression, or the task absent from the
``targets`` mapping. With coherence, binary tasks train on C-HMCNN's MC loss.

Regression targets are standardized with the model's per-output statistics
``target_loc`` and ``target_scale`` (:meth:`TaskGraphModel.fit_target_scaling`; ``fit``
sets them from the training data), so a target in kilograms weighs as much as one in
[0, 1]. Per example, over the known outputs :math:`i` of task :math:`t`,

.. math::
    L_t = \operatorname{mean}_{i \text{ known}}
          \Big(\frac{y_i - \mathrm{loc}_i}{\mathrm{scale}_i} - f_i(x)\Big)^2

i.e. ``L_t = mean over known outputs of ((y - loc)/scale - f(x))²``, where ``f(x)`` is
the head output; predictions are ``loc + scale·f(x)`` in the targets' units (0 and 1,
the identity, until statistics are set).

Example:
    >>> import torch, taskgraph as tg
    >>> model = tg.compile("hierarchies/animals.yaml", in_features=6, task_dim=4)
    >>> out = model(torch.randn(3, 6))
    >>> result = model.loss(out, {"mammal": torch.tensor([1., 0., -1.]),
    ...                           "diet": torch.tensor([2, -1, 0])}, dataset_size=300)
    >>> result.total.backward()
    >>> sorted(result.per_task_dict())
    ['diet', 'mammal']
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from taskgraph.errors import DataError
from taskgraph.model.layout import TaskLayout
from taskgraph.model.outputs import TaskOutputs
from taskgraph.vocabulary import suggest

__all__ = ["LossResult", "task_loss", "target_blocks", "regression_layout",
           "regression_targets", "target_statistics"]


@dataclass
class LossResult:
    """What :meth:`TaskGraphModel.loss` returns.

    Attributes:
        total: data term + scaled KL; call ``.backward()`` on it (or on this object).
        data: the weighted data term.
        kl: the raw summed KL (before scaling by ``kl_weight / dataset_size``).
        per_task: ``(T,)`` mean loss of each task over its labelled examples (0 if none).
        labelled: ``(T,)`` number of labelled examples per task in the batch.
        names: task names, the order of ``per_task``.
    """

    total: Tensor
    data: Tensor
    kl: Tensor
    per_task: Tensor
    labelled: Tensor
    names: tuple[str, ...]

    def backward(self, **kwargs: Any) -> None:
        self.total.backward(**kwargs)

    def item(self) -> float:
        return float(self.total.detach())

    def per_task_dict(self) -> dict[str, float]:
        """``{task: loss}`` for the tasks labelled in this batch."""
        values = self.per_task.detach().cpu().tolist()
        counts = self.labelled.cpu().tolist()
        return {n: v for n, v, c in zip(self.names, values, counts) if c > 0}


def _as_tensor(value: Any, name: str) -> Tensor:
    if isinstance(value, Tensor):
        return value
    try:
        return torch.as_tensor(np.asarray(value, dtype=np.float64))
    except (TypeError, ValueError) as err:
        raise DataError(f"targets for task {name!r}: not numeric ({err})") from None


def target_blocks(layout: TaskLayout, targets: Any, batch_size: int,
                  device: torch.device) -> list[Tensor]:
    """Targets as one float block per head group, NaN where missing.

    ``targets`` is a mapping task -> (B,) / (B, K) / (B, k), or a matrix ``(B, C)`` whose
    columns are the tasks in hierarchy order (``C = T``) or every task's target columns
    (``C`` = sum of widths: 1 for binary / multiclass, K for multilabel, k for regression).
    """
    widths = [1 if g.kind in ("binary", "multiclass") else g.width for g in layout.groups]
    if isinstance(targets, Mapping):
        unknown = [k for k in targets if k not in layout.where]
        if unknown:
            raise DataError(f"targets name unknown task {unknown[0]!r}"
                            f"{suggest(unknown[0], layout.names)}")
        blocks = []
        for g, grp in enumerate(layout.groups):
            cols = []
            for name in grp.names:
                if name not in targets:
                    cols.append(torch.full((batch_size, widths[g]), float("nan"), device=device))
                    continue
                t = _as_tensor(targets[name], name).to(device=device, dtype=torch.float32)
                if t.shape == (batch_size,) and widths[g] == 1:
                    t = t[:, None]
                if t.shape != (batch_size, widths[g]):
                    want = (batch_size,) if widths[g] == 1 else (batch_size, widths[g])
                    raise DataError(f"targets for task {name!r}: expected shape {want}, got "
                                    f"{tuple(_as_tensor(targets[name], name).shape)}")
                cols.append(t)
            blocks.append(torch.stack(cols, dim=1))  # (B, T_g, W)
        return blocks
    y = _as_tensor(targets, "<matrix>").to(device=device, dtype=torch.float32)
    if y.dim() == 1 and layout.num_tasks == 1:
        y = y[:, None]
    starts, offset = [], 0
    for t, name in enumerate(layout.names):
        g, _ = layout.where[name]
        starts.append(offset)
        offset += widths[g]
    if y.dim() != 2 or y.shape[0] != batch_size or y.shape[1] not in (layout.num_tasks, offset):
        raise DataError(f"target matrix: expected shape ({batch_size}, {offset}) — one column "
                        f"per task target — got {tuple(y.shape)}")
    if y.shape[1] == layout.num_tasks and offset != layout.num_tasks:
        raise DataError(f"target matrix has one column per task, but multilabel or "
                        f"multi-output tasks need {offset} columns; pass a mapping instead")
    blocks = []
    for g, grp in enumerate(layout.groups):
        cols = torch.tensor([starts[t] + i for t in grp.tasks for i in range(widths[g])],
                            device=device)
        blocks.append(y.index_select(1, cols).reshape(batch_size, len(grp.tasks), widths[g]))
    return blocks


def regression_layout(layout: TaskLayout) -> tuple[list[Tensor | None], list[str]]:
    """Where each regression output sits among all regression outputs.

    The R regression outputs are numbered in :func:`taskgraph.train.data.target_columns`
    order (hierarchy order, a k-output task's outputs together), the order of the
    model's ``target_loc`` and ``target_scale``.

    Returns:
        Per head group a ``(T_g, k)`` index into that numbering (``None`` for the other
        kinds), and the R outputs' names (``task``, or ``task[i]`` for k > 1).

    Example:
        >>> from taskgraph.hierarchy import load_hierarchy
        >>> h = load_hierarchy("taskgraph: 1\\ntasks:\\n  a: {type: regression, outputs: 2}\\n"
        ...                    "  b: {type: binary}\\n  c: {type: regression}\\n")
        >>> index, names = regression_layout(TaskLayout(h))
        >>> [None if i is None else i.tolist() for i in index], names
        ([None, [[2]], [[0, 1]]], ['a[0]', 'a[1]', 'c'])
    """
    start: dict[str, int] = {}
    names: list[str] = []
    for name in layout.names:  # once, at compile time
        group = layout.groups[layout.where[name][0]]
        if group.kind == "regression":
            start[name] = len(names)
            names += [name] if group.width == 1 else [f"{name}[{i}]" for i in range(group.width)]
    index = [torch.tensor([[start[n] + i for i in range(grp.width)] for n in grp.names],
                          dtype=torch.long) if grp.kind == "regression" else None
             for grp in layout.groups]
    return index, names


def _num_rows(targets: Any) -> int:
    if isinstance(targets, Mapping):
        if not targets:
            return 0
        name, first = next(iter(targets.items()))
        t = _as_tensor(first, name)
    else:
        t = _as_tensor(targets, "<matrix>")
    return int(t.shape[0]) if t.dim() else 1


def regression_targets(layout: TaskLayout, index: list[Tensor | None], targets: Any) -> Tensor:
    """The regression targets in ``targets`` (a matrix or mapping, as :func:`target_blocks`
    takes) as one ``(N, R)`` float matrix on the CPU, in :func:`regression_layout` order,
    NaN where missing.

    Raises:
        DataError: a wrong shape or an infinite regression target (task and example named).
    """
    n = _num_rows(targets)
    blocks = target_blocks(layout, targets, n, torch.device("cpu"))
    R = sum(i.numel() for i in index if i is not None)
    out = torch.full((n, R), float("nan"))  # (N, R)
    for g, idx in enumerate(index):
        if idx is not None:
            t = blocks[g]  # (N, T_g, k)
            if torch.isinf(t).any():
                raise _bad(layout, g, torch.isinf(t), t, "expected a finite value or NaN")
            out[:, idx.reshape(-1)] = t.reshape(n, idx.numel())
    return out


def target_statistics(y: Tensor) -> tuple[Tensor, Tensor]:
    """Per column of ``y`` ``(N, R)``: the mean and the population standard deviation
    (divisor n, as scikit-learn's ``StandardScaler``) of its known (non-NaN) values.

    A column with no known value gets loc 0 and scale 1, a constant column scale 1. The
    sums run over each column sorted, in float64, so the result does not depend on the
    order of the rows (a shuffled loader gives the same statistics as the data set).

    Example:
        >>> y = torch.tensor([[1000.0], [float("nan")], [3000.0], [2000.0]])
        >>> loc, scale = target_statistics(y)
        >>> loc.tolist(), round(scale.item(), 3)  # 1000 * sqrt(2/3)
        ([2000.0], 816.497)
    """
    y = torch.as_tensor(y, dtype=torch.float64).sort(0).values  # NaN last, (N, R)
    known = ~torch.isnan(y)
    n = known.sum(0).clamp(min=1)  # (R,)
    zero = torch.zeros((), dtype=y.dtype)
    loc = torch.where(known, y, zero).sum(0) / n
    var = torch.where(known, (y - loc) ** 2, zero).sum(0) / n
    scale = var.sqrt()
    return loc, torch.where(scale > 0, scale, torch.ones_like(scale))


def _bad(layout: TaskLayout, g: int, bad: Tensor, values: Tensor, what: str) -> DataError:
    """A DataError naming the task, example and value of the first ``True`` in ``bad``."""
    where = bad.nonzero()[0]
    b, j = int(where[0]), int(where[1])
    name = layout.groups[g].names[j]
    return DataError(f"targets for task {name!r}: {what}, got "
                     f"{float(values[tuple(where.tolist())]):g} (example {b})")


def _group_loss(layout: TaskLayout, g: int, logits: Tensor, t: Tensor,
                coherence: Any, raw: Tensor | None,
                scaling: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """Per-task loss sums and label counts of one group: two (T_g,) tensors.

    ``scaling``: a regression group's ``(loc, scale)``, each (T_g, k).
    """
    kind, width = layout.groups[g].kind, layout.groups[g].width
    missing = torch.isnan(t)  # (B, T_g, W)
    if kind != "regression":
        missing = missing | (t == -1)
    known = ~missing
    if kind == "regression":
        if torch.isinf(t).any():
            raise _bad(layout, g, torch.isinf(t), t, "expected a finite value or NaN")
        if scaling is not None:  # standardized units: (y - loc) / scale
            t = (t - scaling[0].to(t.dtype)) / scaling[1].to(t.dtype)  # (B, T_g, k)
        err = (logits - torch.where(known, t, torch.zeros_like(t))) ** 2  # (B, T_g, k)
        loss = torch.where(known, err, torch.zeros_like(err))
        per_example = loss.sum(-1) / known.sum(-1).clamp(min=1)  # mean over labelled outputs
        return per_example.sum(0), known.any(-1).sum(0)
    if kind == "multiclass":
        t = t[..., 0]  # (B, T_g)
        known = known[..., 0]
        bad = known & ((t < 0) | (t >= width) | (t != t.round()))
        if bad.any():
            raise _bad(layout, g, bad, t, f"expected a class index in 0..{width - 1} or -1")
        ce = F.cross_entropy(logits.reshape(-1, width),
                             torch.where(known, t, torch.zeros_like(t)).long().reshape(-1),
                             reduction="none").reshape(t.shape)  # (B, T_g)
        return torch.where(known, ce, torch.zeros_like(ce)).sum(0), known.sum(0)
    bad = known & ((t < 0) | (t > 1))
    if bad.any():
        raise _bad(layout, g, bad, t, "expected a label in [0, 1], or -1 for missing")
    target = torch.where(known, t, torch.zeros_like(t))
    if kind == "binary":
        target, known = target[..., 0], known[..., 0]  # (B, T_g)
        if coherence is not None and raw is not None:
            logits = coherence.mc_logits(raw, torch.where(known, target, -torch.ones_like(target)))
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    bce = torch.where(known, bce, torch.zeros_like(bce))
    if kind == "multilabel":  # (B, T_g, K): mean over a task's labelled labels
        per_example = bce.sum(-1) / known.sum(-1).clamp(min=1)
        return per_example.sum(0), known.any(-1).sum(0)
    return bce.sum(0), known.sum(0)


def task_loss(model: Any, outputs: TaskOutputs, targets: Any, *,
              dataset_size: int | None = None, kl_weight: float = 1.0,
              task_weights: Tensor | None = None) -> LossResult:
    """The loss of ``outputs`` against ``targets`` (see the module docstring).

    A regression task's term is ``L_t = mean over known outputs of
    ((y - loc)/scale - f(x))²`` with the model's ``target_loc`` / ``target_scale``, so
    it is the MSE in standardized units; predictions are ``loc + scale·f(x)``.

    Args:
        model: the :class:`TaskGraphModel` that produced ``outputs``.
        outputs: its :class:`TaskOutputs`.
        targets: a mapping task -> labels, or a matrix with a column per task.
        dataset_size: N of the KL term; ``None`` leaves the KL out of ``total``.
        kl_weight: β of the KL term.
        task_weights: ``(T,)`` weights replacing the YAML's (e.g. learned balancing).

    Raises:
        DataError: a wrong shape, an unknown task, or a label outside a task's classes.
    """
    layout: TaskLayout = model.layout
    B = outputs.batch_size
    device = outputs.blocks[0].device
    blocks = target_blocks(layout, targets, B, device)
    T = layout.num_tasks
    sums = torch.zeros(T, device=device, dtype=outputs.blocks[0].dtype)
    counts = torch.zeros(T, device=device, dtype=torch.long)
    for g, (logits, t) in enumerate(zip(outputs.blocks, blocks)):
        coherence = model.coherence if g == layout.binary_group else None
        scaling = model.target_scaling(g) if layout.groups[g].kind == "regression" else None
        s, c = _group_loss(layout, g, logits, t, coherence, outputs.raw_binary, scaling)
        idx = getattr(model, f"group_index_{g}")
        sums = sums.index_add(0, idx, s.to(sums.dtype))
        counts = counts.index_add(0, idx, c.to(counts.dtype))
    per_task = sums / counts.clamp(min=1)  # (T,)
    weights = model.task_weights if task_weights is None else task_weights
    present = (counts > 0).to(per_task.dtype)
    data = (weights * per_task * present).sum() / (weights * present).sum().clamp(min=1e-12)
    kl = model.kl()
    total = data
    if dataset_size is not None:
        if not isinstance(dataset_size, numbers.Integral) or dataset_size < 1:
            raise DataError(f"dataset_size: expected a positive integer, got {dataset_size!r}")
        total = data + kl_weight * kl.to(data.dtype) / dataset_size
    return LossResult(total, data, kl, per_task, counts, layout.names)
