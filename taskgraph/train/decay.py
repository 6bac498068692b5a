r"""Weight decay that is a mean over tasks, like the loss, and skips what a KL term regularizes.

Adam's coupled ``weight_decay`` :math:`\lambda` adds :math:`\lambda \theta` to the gradient
of a parameter :math:`\theta`: an L2 penalty :math:`\tfrac{\lambda}{2}\lVert\theta\rVert^2`.
:func:`param_groups` gives a taskgraph model the penalty

.. math::
    \frac{\lambda}{2} \lVert \theta_{\mathrm{shared}} \rVert^2
    + \frac{1}{T} \sum_{t=1}^{T} \frac{\lambda_{\mathrm{task}}}{2} \lVert \theta_t \rVert^2,

where :math:`\theta_{\mathrm{shared}}` are the parameters every task reads (the encoder,
the message transforms, the norms) and :math:`\theta_t` task :math:`t`'s own (its rows of
the projections, of the heads, of the task embedding and of the prediction tables); the
variational parameters of the synapses and of stochastic layers get none. Why:

- The data loss is a mean over the :math:`T` tasks, so a task's own parameters get
  :math:`1/T` of their task's gradient. A penalty that is a mean over tasks too weighs
  the same against it whatever the hierarchy's size; a plain one (the same decay on every
  parameter, the default :math:`\lambda_{\mathrm{task}} = T \lambda`) weighs :math:`T`
  times more on a 4,000-label hierarchy than on a 1-label one.
- The synapses' and stochastic layers' parameters already have a prior, through the KL
  term of the loss (``kl_weight · KL(q ‖ p) / (N W)``), and an L2 penalty contradicts it:
  it pulls a synapse's mean to 0 (its prior mean is the YAML ``mean``, 1 by default), its
  std :math:`\mathrm{softplus}(\rho)` to :math:`\mathrm{softplus}(0) \approx 0.69` (seven
  times the default 0.1) and a release probability to 0.5.

On GO and FunCat both effects were measured (``benchmarks/results/grad_scale.md``, and the
README's weight-decay notes).

Example:
    >>> import taskgraph as tg
    >>> model = tg.compile("hierarchies/animals.yaml", in_features=6)  # 4 tasks
    >>> [(g["weight_decay"], len(g["params"])) for g in param_groups(model, 1e-4)]
    [(0.0001, 16), (0.0001, 11), (0.0, 3)]
    >>> [g["weight_decay"] for g in param_groups(model, 1e-4, task_weight_decay=4e-3)]
    [0.0001, 0.001, 0.0]
    >>> len(param_groups(model, 0.0))  # no weight decay: one group
    1
"""

from __future__ import annotations

from typing import Any

from torch import nn

from taskgraph.model.sources import PredictionSource
from taskgraph.nn.stochastic_linear import StochasticLinear, TaskLinear
from taskgraph.nn.synapses import EdgeSynapses

__all__ = ["param_groups", "prior_regularized", "per_task", "num_tasks"]


def _has_prior(module: nn.Module) -> bool:
    """Whether ``module``'s own parameters all enter its ``kl()``."""
    if isinstance(module, (EdgeSynapses, StochasticLinear)):
        return True
    return isinstance(module, TaskLinear) and module.stochastic


def _own(model: nn.Module, keep: Any) -> list[nn.Parameter]:
    """Parameters of ``model``'s modules for which ``keep(module)``, in
    ``model.parameters()`` order, each once."""
    ids: set[int] = set()
    for module in model.modules():
        if keep(module):
            ids.update(id(p) for p in module.parameters(recurse=False))
    return [p for p in model.parameters() if id(p) in ids]


def prior_regularized(model: nn.Module) -> list[nn.Parameter]:
    """The parameters whose prior is a KL term of the loss (synapses, stochastic layers)."""
    return _own(model, _has_prior)


def per_task(model: nn.Module) -> list[nn.Parameter]:
    """The parameters that belong to one task each (deterministic :class:`TaskLinear`
    layers, the prediction tables, ``task_embedding``), prior-regularized ones excluded."""
    deterministic = _own(model, lambda m: isinstance(m, TaskLinear) and not _has_prior(m))
    ids = {id(p) for p in deterministic}
    for module in model.modules():
        if isinstance(module, PredictionSource):  # its tables sit in a ParameterList
            ids.update(id(p) for p in module.parameters())
    embedding = getattr(model, "task_embedding", None)
    if isinstance(embedding, nn.Parameter):
        ids.add(id(embedding))
    return [p for p in model.parameters() if id(p) in ids]


def num_tasks(model: nn.Module) -> int:
    """:math:`T`, the number of tasks the loss averages over: the model's layout's, else
    the largest :class:`TaskLinear`'s (1 without any)."""
    layout = getattr(model, "layout", None)
    if layout is not None and hasattr(layout, "num_tasks"):
        return max(1, int(layout.num_tasks))
    sizes = [m.num_tasks for m in model.modules() if isinstance(m, TaskLinear)]
    return max(sizes, default=1)


def param_groups(model: nn.Module, weight_decay: float, extra: list[nn.Parameter] | None = None,
                 *, task_weight_decay: float | None = None) -> list[dict[str, Any]]:
    r"""Optimizer parameter groups for the penalty of the module docstring:
    ``weight_decay`` :math:`\lambda` on shared parameters (and ``extra``, e.g. a loss
    weighting's), ``task_weight_decay / T`` on :func:`per_task` ones (default
    ``task_weight_decay = T * weight_decay``: the same decay as the shared ones), 0 on
    :func:`prior_regularized` ones. Empty groups are left out; no decay gives one group."""
    params = list(model.parameters()) + list(extra or [])
    wd = float(weight_decay)
    T = num_tasks(model)
    task_wd = wd if task_weight_decay is None else float(task_weight_decay) / T
    if wd == 0 and task_wd == 0:
        return [{"params": params, "weight_decay": 0.0}]
    skip = {id(p) for p in prior_regularized(model)}
    own = {id(p) for p in per_task(model)}
    groups = [
        {"params": [p for p in params if id(p) not in skip and id(p) not in own],
         "weight_decay": wd},
        {"params": [p for p in params if id(p) in own], "weight_decay": task_wd},
        {"params": [p for p in params if id(p) in skip], "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]
