r"""Post-hoc temperature scaling (Guo et al., "On Calibration of Modern Neural Networks",
ICML 2017), fitted on validation data and kept in the model's state.

A temperature :math:`T > 0` divides a task's logits before they become probabilities:

.. math::
    p = \sigma(z / T) \ \text{(binary, multilabel)}, \qquad
    p = \mathrm{softmax}(z / T) \ \text{(multiclass)};

regression outputs are untouched. :func:`calibrate` runs the model once over a loader
(expected weights, dropout off), keeps the logits, and fits :math:`\log T` by minimising
the validation negative log-likelihood of the labelled entries,

.. math::
    \min_{\log T} \sum_{c} \frac{1}{n_c} \sum_{(i, t):\, c(t) = c} \ell_t(z_{it} / T_c,\, y_{it}),

where :math:`c(t)` is the temperature task :math:`t` shares (``per="task"``: its own;
``per="level"``: one per depth, the longest path from a root; ``per="global"``: one),
:math:`n_c` counts the labelled entries of :math:`c` (labels, for multilabel), and
:math:`\ell` is the binary cross-entropy (summed over a multilabel task's labelled
labels) or the cross-entropy. Every temperature is one coordinate of one L-BFGS problem
(vectorised over tasks; with no shared parameters the sum splits, so each task gets the
minimiser of its own validation NLL). :math:`\log T = L \tanh(u / L)` with
:math:`L = \log 100` keeps :math:`T` in :math:`(0.01, 100)` even when a task's
validation labels are separated perfectly. In a coherent model the temperatures divide
the raw logits before the coherence constraint, :math:`\max_{u \in \{t\} \cup
\mathcal D(t)} z_u / T_u`, so its outputs stay coherent.

The temperatures are the model's ``temperature`` buffer, ``(T,)`` in hierarchy task
order, 1 until fitted (and for regression tasks); :func:`taskgraph.save` keeps them, and
a checkpoint saved before they existed loads with 1. ``predict`` applies them to every
draw (``samples > 0`` and MC dropout alike).

Example:
    >>> import torch, taskgraph as tg
    >>> model = tg.compile("hierarchies/animals.yaml", in_features=6, task_dim=4)
    >>> Y = torch.tensor([[1., 0., 2., 5.], [0., 1., 1., 3.], [1., 2., 0., 4.]])
    >>> model = calibrate(model, [(torch.randn(3, 6), Y)], per="global")
    >>> t = model.temperature.tolist()
    >>> len(t), t[0] == t[1] == t[2] > 0, t[3]  # one shared T; the regression task: 1
    (4, True, 1.0)
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch
from torch import Tensor

from taskgraph.errors import ArgumentError, DataError

__all__ = ["calibrate", "scaled_logits", "PER"]

#: How temperatures are shared: one per task, per hierarchy level, or one for all.
PER = ("task", "level", "global")

_BOUND = math.log(100.0)  # |log T| < log 100


def scaled_logits(model: Any, outputs: Any) -> list[Tensor]:
    """The blocks of ``outputs`` (a :class:`~taskgraph.model.outputs.TaskOutputs`) with
    each probabilistic task's logits divided by its temperature; in a coherent model the
    raw binary logits are divided and then constrained. The blocks themselves when every
    temperature is 1.

    Example:
        >>> import torch, taskgraph as tg
        >>> model = tg.compile("hierarchies/animals.yaml", in_features=6, task_dim=4)
        >>> out = model(torch.randn(2, 6), sample=False)
        >>> _ = model.temperature.fill_(2.0)
        >>> torch.allclose(scaled_logits(model, out)[1], out.blocks[1] / 2)  # diet
        True
    """
    temperature = model.temperature  # (T,)
    if not bool((temperature != 1).any()):
        return list(outputs.blocks)
    blocks = []
    for g, (group, block) in enumerate(zip(model.layout.groups, outputs.blocks)):
        if not group.task_type.probabilistic:
            blocks.append(block)
            continue
        t = temperature.index_select(0, model.group_tasks(g)).to(block.dtype)  # (T_g,)
        if g == model.layout.binary_group and model.coherence is not None \
                and outputs.raw_binary is not None:
            blocks.append(model.coherence(outputs.raw_binary / t))  # (B, T_b)
        else:
            blocks.append(block / (t if block.dim() == 2 else t[:, None]))  # (B, T_g[, W])
    return blocks


def calibrate(model: Any, loader: Iterable[Any], *, per: str = "task",
              max_iter: int = 100) -> Any:
    """Fit the temperatures of ``model`` on ``loader`` (validation data); returns the model.

    Args:
        model: a :class:`~taskgraph.TaskGraphModel`; its ``temperature`` buffer is set in
            place (earlier temperatures play no part: the fit starts from the logits).
        loader: ``(x, targets)`` batches (:mod:`taskgraph.model.batches`), targets with
            missing labels allowed.
        per: ``"task"``, ``"level"`` (one temperature per hierarchy depth) or
            ``"global"``.
        max_iter: L-BFGS iterations.

    Returns:
        ``model``, with the fitted temperatures (1 for a task with no labelled entry).

    Raises:
        ArgumentError: a bad ``per`` or ``max_iter``, or a model without a binary,
            multiclass or multilabel task.
        DataError: a bad batch or target, or no labelled entry of any such task.

    Example:
        >>> import torch, taskgraph as tg
        >>> model = tg.compile("hierarchies/animals.yaml", in_features=6, task_dim=4)
        >>> Y = torch.tensor([[1., 0., 2., 5.], [0., 1., 1., 3.]])
        >>> calibrate(model, [(torch.randn(2, 6), Y)]).temperature.shape
        torch.Size([4])
    """
    from taskgraph.model.model import TaskGraphModel

    if not isinstance(model, TaskGraphModel):
        raise TypeError(f"calibrate: expected a TaskGraphModel, got {type(model).__name__}")
    if per not in PER:
        raise ArgumentError(f"calibrate: per: expected one of {', '.join(PER)}, got {per!r}")
    if not isinstance(max_iter, int) or isinstance(max_iter, bool) or max_iter < 1:
        raise ArgumentError(f"calibrate: max_iter: expected a positive integer, got "
                            f"{max_iter!r}")
    groups = [g for g, grp in enumerate(model.layout.groups) if grp.task_type.probabilistic]
    if not groups:
        raise ArgumentError("calibrate: the model has no binary, multiclass or multilabel "
                            "task (regression outputs have no temperature)")
    param, count = _parameters(model, per)  # (T,), P
    logits, targets = _collect(model, loader, groups)
    log_t = _fit(model, groups, logits, targets, param, count, max_iter)  # (P,)
    with torch.no_grad():
        values = torch.ones_like(model.temperature)
        fitted = param >= 0
        values[fitted] = log_t.exp().to(values.dtype)[param[fitted]]
        model.temperature.copy_(values)
    return model


def _parameters(model: Any, per: str) -> tuple[Tensor, int]:
    """Each task's temperature parameter (``(T,)``, -1 for regression) and their count."""
    layout, device = model.layout, model.temperature.device
    probabilistic = torch.zeros(layout.num_tasks, dtype=torch.bool)
    for group in layout.groups:
        if group.task_type.probabilistic:
            probabilistic[list(group.tasks)] = True
    if per == "task":
        key = torch.arange(layout.num_tasks)
    elif per == "level":
        depths = model.hierarchy.depths
        key = torch.tensor([depths[name] for name in layout.names], dtype=torch.long)
    else:
        key = torch.zeros(layout.num_tasks, dtype=torch.long)
    _, param = torch.unique(key[probabilistic], return_inverse=True)  # dense 0..P-1
    out = torch.full((layout.num_tasks,), -1, dtype=torch.long)
    out[probabilistic] = param
    return out.to(device), int(param.max()) + 1


@torch.no_grad()
def _collect(model: Any, loader: Iterable[Any], groups: list[int]
             ) -> tuple[dict[int, Tensor], dict[int, Tensor]]:
    """One pass of the model (eval mode, expected weights) over ``loader``: per
    probabilistic group its logits (raw ones before coherence) and ``(N, T_g, w)``
    targets, on the model's device."""
    from taskgraph.model.batches import iter_batches
    from taskgraph.model.targets import check_targets, target_blocks

    device = model.temperature.device
    binary, coherent = model.layout.binary_group, model.coherence is not None
    logits: dict[int, list[Tensor]] = {g: [] for g in groups}
    targets: dict[int, list[Tensor]] = {g: [] for g in groups}
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        for x, y in iter_batches(loader, device, who="calibrate"):
            out = model(x, sample=False)
            blocks = target_blocks(model.layout, y, out.batch_size, device)
            for g in groups:
                raw = out.raw_binary if g == binary and coherent else out.blocks[g]
                logits[g].append(raw.double())
                targets[g].append(blocks[g].double())
    finally:
        for module, flag in flags:
            module.training = flag
    cat = {g: torch.cat(v) for g, v in logits.items()}
    tgt = {g: torch.cat(v) for g, v in targets.items()}
    for g in groups:
        check_targets(model.layout.groups[g], tgt[g])
    return cat, tgt


def _fit(model: Any, groups: list[int], logits: dict[int, Tensor],
         targets: dict[int, Tensor], param: Tensor, count: int, max_iter: int) -> Tensor:
    """L-BFGS over the ``count`` unconstrained parameters; returns ``log T`` (P,)."""
    layout = model.layout
    device = logits[groups[0]].device
    # n_c: labelled entries per parameter (labels, for multilabel)
    n = torch.zeros(count, dtype=torch.float64, device=device)
    index = {g: param.index_select(0, model.group_tasks(g)) for g in groups}  # (T_g,)
    for g in groups:
        known = layout.groups[g].task_type.known(targets[g]).sum((0, 2))  # (T_g,)
        n.index_add_(0, index[g], known.double())
    if not bool((n > 0).any()):
        raise DataError("calibrate: the loader has no labelled entry of a binary, "
                        "multiclass or multilabel task")
    weight = torch.where(n > 0, 1.0 / n.clamp_min(1), torch.zeros_like(n))  # (P,)
    u = torch.zeros(count, dtype=torch.float64, device=device, requires_grad=True)
    coherent_group = layout.binary_group if model.coherence is not None else None

    def objective() -> Tensor:
        log_t = _BOUND * torch.tanh(u / _BOUND)  # (P,)
        total = u.new_zeros(())
        for g in groups:
            kind = layout.groups[g].task_type
            t = log_t.exp().index_select(0, index[g])  # (T_g,)
            z = logits[g] / (t if logits[g].dim() == 2 else t[:, None])  # (N, T_g[, W])
            if g == coherent_group:
                z = model.coherence(z)
            per_example, _ = kind.loss(z, targets[g])  # (N, T_g), 0 where unlabelled
            total = total + (per_example.sum(0) * weight.index_select(0, index[g])).sum()
        return total

    optimizer = torch.optim.LBFGS([u], lr=1.0, max_iter=max_iter, tolerance_grad=1e-10,
                                  tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return (_BOUND * torch.tanh(u / _BOUND)).detach()
