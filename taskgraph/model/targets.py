"""Targets: the target columns of a hierarchy, targets as per-group blocks, the one check
of their values, and the regression outputs' numbering and statistics.

A target matrix has the tasks' target columns in hierarchy order (:func:`target_columns`:
one for a binary, multiclass or one-output regression task, K for a multilabel task, k
for a k-output regression task); a mapping gives each task its ``(B,)`` / ``(B, w)``
targets. Missing: NaN, and -1 except for regression. The loss, ``evaluate``, the
reliability diagrams and the data sets all read targets through this module.

Example:
    >>> import torch, taskgraph as tg
    >>> from taskgraph.model.layout import TaskLayout
    >>> h = tg.load_hierarchy("hierarchies/animals.yaml")
    >>> target_columns(h)
    [('mammal', 1), ('diet', 1), ('species', 1), ('weight_kg', 1)]
    >>> layout = TaskLayout(h)
    >>> blocks = target_blocks(layout, {"diet": torch.tensor([2, -1])}, 2, torch.device("cpu"))
    >>> [tuple(b.shape) for b in blocks], blocks[1][:, 0, 0].tolist()
    ([(2, 1, 1), (2, 1, 1), (2, 1, 1), (2, 1, 1)], [2.0, -1.0])
    >>> check_targets(layout.groups[1], torch.tensor([[[3.0], [0.0]]]))
    Traceback (most recent call last):
    ...
    taskgraph.errors.DataError: targets for task 'diet': expected a class index in 0..2, \
or -1 / NaN for missing, got 3 (example 0)
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor

from taskgraph.errors import DataError
from taskgraph.hierarchy import Hierarchy
from taskgraph.model.layout import HeadGroup, TaskLayout
from taskgraph.model.task_types import TASK_TYPES
from taskgraph.vocabulary import suggest

__all__ = ["target_columns", "target_slices", "target_blocks", "check_targets", "regression_layout",
           "regression_targets", "target_statistics", "scaling_values"]


def target_columns(hierarchy: Hierarchy) -> list[tuple[str, int]]:
    """``[(task, number of target columns)]`` in hierarchy order."""
    out = []
    for name, spec in hierarchy.tasks.items():
        kind = TASK_TYPES[spec.type]
        out.append((name, kind.target_width(kind.head_width(spec))))
    return out


def target_slices(hierarchy: Hierarchy) -> list[tuple[str, slice]]:
    """``[(task, its columns of a target matrix)]`` in hierarchy order.

    >>> import taskgraph as tg
    >>> h = tg.load_hierarchy("hierarchies/sentiment.yaml")  # aspects: 5 labels
    >>> [(name, s.start, s.stop) for name, s in target_slices(h)]
    [('sentiment', 0, 1), ('emotion', 1, 2), ('aspects', 2, 7)]
    """
    out, start = [], 0
    for name, width in target_columns(hierarchy):
        out.append((name, slice(start, start + width)))
        start += width
    return out


def _as_tensor(value: Any, name: str) -> Tensor:
    if isinstance(value, Tensor):
        return value
    try:
        return torch.as_tensor(np.asarray(value, dtype=np.float64))
    except (TypeError, ValueError) as err:
        raise DataError(f"targets for task {name!r}: not numeric ({err})") from None


def _widths(layout: TaskLayout) -> list[int]:
    """Target columns per task of each group."""
    return [TASK_TYPES[g.kind].target_width(g.width) for g in layout.groups]


def target_blocks(layout: TaskLayout, targets: Any, batch_size: int,
                  device: torch.device) -> list[Tensor]:
    """Targets as one float block ``(B, T_g, w)`` per head group, NaN where missing.

    ``targets`` is a mapping task -> (B,) / (B, K) / (B, k), or a matrix ``(B, C)`` whose
    columns are the tasks in hierarchy order (``C = T``) or every task's target columns
    (``C`` = the sum of :func:`target_columns`). Only shapes are checked here
    (:func:`check_targets` checks values).

    Raises:
        DataError: an unknown task, a wrong shape, or a non-numeric target.
    """
    widths = _widths(layout)
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
                raw = _as_tensor(targets[name], name)
                t = raw.to(device=device, dtype=torch.float32)
                if t.shape == (batch_size,) and widths[g] == 1:
                    t = t[:, None]
                if t.shape != (batch_size, widths[g]):
                    want = (batch_size,) if widths[g] == 1 else (batch_size, widths[g])
                    raise DataError(f"targets for task {name!r}: expected shape {want}, got "
                                    f"{tuple(raw.shape)}")
                cols.append(t)
            blocks.append(torch.stack(cols, dim=1))  # (B, T_g, w)
        return blocks
    y = _as_tensor(targets, "<matrix>").to(device=device, dtype=torch.float32)
    if y.dim() == 1 and layout.num_tasks == 1:
        y = y[:, None]
    starts, offset = [0] * layout.num_tasks, 0
    for t, name in enumerate(layout.names):
        starts[t] = offset
        offset += widths[layout.where[name][0]]
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


def check_targets(group: HeadGroup, target: Any, *, hard: bool = False) -> None:
    """Raise one :class:`DataError` for the first target ``group``'s type cannot take.

    Args:
        group: the head group.
        target: its ``(N, T_g, w)`` block, a torch tensor or a NumPy array.
        hard: scoring: class labels must be exactly 0 or 1 (training takes ``[0, 1]``).

    Raises:
        DataError: ``targets for task 'T': expected ..., got V (example i)``.
    """
    kind = TASK_TYPES[group.kind]
    bad = kind.bad_targets(target, group.width, hard=hard)
    if not bool(bad.any()):
        return
    where = (bad.nonzero()[0] if isinstance(bad, Tensor) else np.argwhere(bad)[0]).tolist()
    value = float(target[tuple(where)])
    raise DataError(f"targets for task {group.names[where[1]]!r}: expected "
                    f"{kind.expected(group.width, hard=hard)}, got {value:g} (example {where[0]})")


def regression_layout(layout: TaskLayout) -> tuple[list[Tensor | None], list[str]]:
    """Where each standardized output sits among all of them (the regression outputs).

    The R outputs are numbered in :func:`target_columns` order (hierarchy order, a
    k-output task's outputs together), the order of the model's ``target_loc`` and
    ``target_scale``.

    Returns:
        Per head group a ``(T_g, k)`` index into that numbering (``None`` for the groups
        of other types), and the R outputs' names (``task``, or ``task[i]`` for k > 1).

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
        if TASK_TYPES[group.kind].standardized:
            start[name] = len(names)
            names += [name] if group.width == 1 else [f"{name}[{i}]" for i in range(group.width)]
    index = [torch.tensor([[start[n] + i for i in range(grp.width)] for n in grp.names],
                          dtype=torch.long) if TASK_TYPES[grp.kind].standardized else None
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
    """The standardized-type targets in ``targets`` (a matrix or mapping, as
    :func:`target_blocks` takes) as one ``(N, R)`` float matrix on the CPU, in
    :func:`regression_layout` order, NaN where missing.

    Raises:
        DataError: a wrong shape or an infinite regression target (task and example named).
    """
    n = _num_rows(targets)
    blocks = target_blocks(layout, targets, n, torch.device("cpu"))
    R = sum(i.numel() for i in index if i is not None)
    out = torch.full((n, R), float("nan"))  # (N, R)
    for g, idx in enumerate(index):
        if idx is not None:
            check_targets(layout.groups[g], blocks[g])
            out[:, idx.reshape(-1)] = blocks[g].reshape(n, idx.numel())
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


def scaling_values(names: list[str], loc: Any, scale: Any) -> tuple[Tensor, Tensor]:
    """``loc`` and ``scale`` of the regression outputs ``names``, checked: ``(R,)`` float64
    tensors on the CPU.

    Example:
        >>> scaling_values(["w"], [70], [0.0])
        Traceback (most recent call last):
        ...
        taskgraph.errors.DataError: set_target_scaling: scale of regression output 'w': \
expected a finite positive number, got 0

    Raises:
        DataError: not R values, a non-finite value, or a scale <= 0 (output named).
    """
    R, values = len(names), []
    for what, v in (("loc", loc), ("scale", scale)):
        try:
            t = (v.detach().cpu() if isinstance(v, Tensor) else
                 torch.as_tensor(np.asarray(v, dtype=np.float64))).double().reshape(-1)
        except (TypeError, ValueError) as err:
            raise DataError(f"set_target_scaling: {what}: not numeric ({err})") from None
        if t.shape != (R,):
            raise DataError(f"set_target_scaling: {what}: expected {R} values, one per "
                            f"regression output ({', '.join(names)[:200]}), got {t.numel()}")
        bad = ~torch.isfinite(t) | ((t <= 0) if what == "scale" else False)
        if bad.any():
            i = int(bad.nonzero()[0])
            want = "a finite positive number" if what == "scale" else "a finite number"
            raise DataError(f"set_target_scaling: {what} of regression output {names[i]!r}: "
                            f"expected {want}, got {float(t[i]):g}")
        values.append(t)
    return values[0], values[1]
