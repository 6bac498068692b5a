r"""The multi-task loss: the negative ELBO per example and per unit of task weight.

.. math::
    \mathcal{L} = \frac{1}{W}\Big[\frac{1}{B}\sum_{b=1}^{B} \sum_{t \in \mathcal{T}_b}
                  w_t\, \ell_t(x_b, y_{bt}) \;+\; \beta\,\frac{\mathrm{KL}(q \,\|\, p)}{N}\Big],
    \qquad W = \sum_t w_t

:math:`\mathcal{T}_b` are the tasks labelled in example :math:`b`, :math:`w_t` the task
weights (YAML ``weight``), :math:`N` the data-set size, :math:`B` the batch size, and
:math:`\ell_t = -\log p(y_{bt} \mid x_b, w)` the example's negative log-likelihood for
task :math:`t`:

- binary: binary cross-entropy (with coherence: C-HMCNN's MC loss);
- multiclass: cross-entropy;
- multilabel: the sum of the binary cross-entropies of its known labels;
- regression: :math:`\tfrac12 \sum_i r_i^2` over its known outputs, with
  :math:`r_i = (y_i - \mathrm{loc}_i)/\mathrm{scale}_i - f_i(x)` (a unit-variance
  gaussian in standardized units, the constant :math:`\tfrac12 \log 2\pi` dropped).

So ``total = (Σ_b Σ_t w_t ℓ_bt / B + β·KL/N) / W``: the standard ELBO (a sum over every
label of the example, and the KL once per data set), divided by the constant
:math:`N W`, which changes neither its optimum nor the balance of its two terms. With
every label known and unit weights the data term is the mean loss over tasks. Missing
labels (``-1`` or NaN for class tasks, NaN for regression, or the task absent from the
``targets`` mapping) contribute nothing. ``per_task`` reports each task's mean
:math:`\ell_t` over its labelled examples.

Regression targets are standardized with the model's per-output statistics
``target_loc`` and ``target_scale`` (:meth:`TaskGraphModel.fit_target_scaling`; ``fit``
sets them from the training data), so a target in kilograms weighs as much as one in
[0, 1]; predictions are ``loc + scale·f(x)`` in the targets' units (0 and 1, the
identity, until statistics are set).

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
from typing import Any

from torch import Tensor

from taskgraph.errors import ArgumentError
from taskgraph.model.outputs import TaskOutputs
from taskgraph.model.targets import (check_targets, regression_layout, regression_targets,
                                     target_blocks, target_statistics)

# target_blocks, regression_layout, regression_targets and target_statistics live in
# taskgraph.model.targets; they are importable from here as before.
__all__ = ["LossResult", "task_loss", "target_blocks", "regression_layout",
           "regression_targets", "target_statistics"]


@dataclass
class LossResult:
    """What :meth:`TaskGraphModel.loss` returns.

    Attributes:
        total: ``data + kl_term``; call ``.backward()`` on it (or on this object).
        data: the data term ``Σ_b Σ_t w_t ℓ_bt / (B W)``.
        kl: the raw summed KL (before scaling).
        kl_term: the KL as it enters ``total``: ``kl_weight · kl / (dataset_size · W)``
            (0 without ``dataset_size``).
        per_task: ``(T,)`` mean loss of each task over its labelled examples (0 if none).
        labelled: ``(T,)`` number of labelled examples per task in the batch.
        names: task names, the order of ``per_task``.
    """

    total: Tensor
    data: Tensor
    kl: Tensor
    kl_term: Tensor
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


def task_loss(model: Any, outputs: TaskOutputs, targets: Any, *,
              dataset_size: int | None = None, kl_weight: float = 1.0,
              task_weights: Tensor | None = None) -> LossResult:
    """The loss of ``outputs`` against ``targets``: ``(Σ_b Σ_t w_t ℓ_bt / B +
    β·KL/N) / W`` (see the module docstring for ``ℓ`` per task type).

    Args:
        model: the :class:`TaskGraphModel` that produced ``outputs``.
        outputs: its :class:`TaskOutputs`.
        targets: a mapping task -> labels, or a matrix with a column per task.
        dataset_size: N of the KL term; ``None`` leaves the KL out of ``total``.
        kl_weight: β of the KL term.
        task_weights: ``(T,)`` weights replacing the YAML's (e.g. learned balancing).

    Raises:
        DataError: a wrong shape, an unknown task, or a label outside a task's classes.
        ArgumentError: ``dataset_size`` is not a positive integer.
    """
    if dataset_size is not None and (not isinstance(dataset_size, numbers.Integral)
                                     or isinstance(dataset_size, bool) or dataset_size < 1):
        raise ArgumentError(f"loss: dataset_size: expected a positive integer, got "
                            f"{dataset_size!r}")
    layout = model.layout
    dtype = outputs.blocks[0].dtype
    blocks = target_blocks(layout, targets, outputs.batch_size, outputs.blocks[0].device)
    sums, counts = [], []
    for g, (group, t) in enumerate(zip(layout.groups, blocks)):  # t: (B, T_g, w)
        check_targets(group, t)
        scaling = model.target_scaling(g)  # standardized units: (y - loc) / scale
        if scaling is not None:
            t = (t - scaling[0].to(t.dtype)) / scaling[1].to(t.dtype)  # (B, T_g, k)
        per_example, labelled = group.task_type.loss(model.loss_logits(outputs, g, t), t)
        sums.append(per_example.sum(0).to(dtype))  # (T_g,)
        counts.append(labelled.sum(0))
    counts = model.ungroup(counts)  # (T,)
    sums = model.ungroup(sums)  # (T,) summed over the batch's labelled examples
    per_task = sums / counts.clamp(min=1)  # (T,)
    weights = model.task_weights if task_weights is None else task_weights
    W = weights.sum().clamp(min=1e-12)
    data = (weights * sums).sum() / (outputs.batch_size * W)
    kl = model.kl()
    kl_term = data.new_zeros(())
    if dataset_size is not None:
        kl_term = kl_weight * kl.to(data.dtype) / (dataset_size * W)
    total = data + kl_term
    return LossResult(total, data, kl, kl_term, per_task, counts, layout.names)
