r"""Which parameters weight decay applies to: every one except those a KL term regularizes.

Adam's ``weight_decay`` :math:`\lambda` adds :math:`\lambda \theta` to the gradient of a
parameter :math:`\theta`, i.e. an L2 penalty :math:`\tfrac{\lambda}{2}\lVert\theta\rVert^2`
pulling it towards 0. The variational parameters of taskgraph's stochastic parts already
have a prior, through the KL term of the loss (``kl_weight · KL(q ‖ p) / (N W)``, see
:func:`taskgraph.model.loss.multitask_loss`), and an L2 penalty on them contradicts it:

- a synapse's mean :math:`\mu_e` has the prior mean 1 (the YAML ``mean``), and L2 pulls it
  to 0, i.e. turns the message off;
- its std is :math:`\mathrm{softplus}(\rho_e)`, and L2 on :math:`\rho_e` pulls the std to
  :math:`\mathrm{softplus}(0) = \log 2 \approx 0.69`, seven times the default 0.1;
- a release probability's logit is pulled to :math:`p = 0.5`.

Because the loss is a mean over tasks, each synapse's data gradient is small, and on a
Gene Ontology hierarchy (3,570 labels) these L2 terms were as large as it
(``benchmarks/results/grad_scale.md``). So :func:`param_groups` gives the parameters of
:class:`~taskgraph.nn.synapses.EdgeSynapses` and of stochastic
:class:`~taskgraph.nn.stochastic_linear.StochasticLinear` /
:class:`~taskgraph.nn.stochastic_linear.TaskLinear` layers (means and
:math:`\rho`) no weight decay, and every other parameter :math:`\lambda`.

Example:
    >>> import taskgraph as tg
    >>> model = tg.compile("hierarchies/animals.yaml", in_features=6)
    >>> groups = param_groups(model, 1e-5)
    >>> [(g["weight_decay"], len(g["params"])) for g in groups]  # doctest: +ELLIPSIS
    [(1e-05, ...), (0.0, 3)]
    >>> [len(g["params"]) for g in param_groups(model, 0.0)] == [len(list(model.parameters()))]
    True
"""

from __future__ import annotations

from typing import Any

from torch import nn

from taskgraph.nn.stochastic_linear import StochasticLinear, TaskLinear
from taskgraph.nn.synapses import EdgeSynapses

__all__ = ["param_groups", "prior_regularized"]


def _has_prior(module: nn.Module) -> bool:
    """Whether ``module``'s own parameters all enter its ``kl()``."""
    if isinstance(module, EdgeSynapses):
        return True
    if isinstance(module, StochasticLinear):
        return True
    return isinstance(module, TaskLinear) and module.stochastic


def prior_regularized(model: nn.Module) -> list[nn.Parameter]:
    """The parameters whose prior is a KL term of the loss (synapses, stochastic layers),
    in ``model.parameters()`` order, each once."""
    own: set[int] = set()
    for module in model.modules():
        if _has_prior(module):
            own.update(id(p) for p in module.parameters(recurse=False))
    seen: set[int] = set()
    out = []
    for p in model.parameters():
        if id(p) in own and id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def param_groups(model: nn.Module, weight_decay: float,
                 extra: list[nn.Parameter] | None = None) -> list[dict[str, Any]]:
    """Optimizer parameter groups: ``weight_decay`` on every parameter of ``model`` (and
    ``extra``) except :func:`prior_regularized` ones, which get 0. One group when
    ``weight_decay`` is 0 or nothing is prior-regularized."""
    params = list(model.parameters()) + list(extra or [])
    if weight_decay == 0:
        return [{"params": params, "weight_decay": 0.0}]
    skip = {id(p) for p in prior_regularized(model)}
    decayed = [p for p in params if id(p) not in skip]
    kept = [p for p in params if id(p) in skip]
    return [g for g in ({"params": decayed, "weight_decay": float(weight_decay)},
                        {"params": kept, "weight_decay": 0.0}) if g["params"]]
