r"""Loss balancing between tasks: one strategy object per way of weighting them.

``fit(weighting=...)`` takes a :class:`Weighting` or its name (:data:`WEIGHTINGS`):

* :class:`Static` (``"static"``): the YAML ``weight`` of each task.
* :class:`Uncertainty` (``"uncertainty"``; Kendall, Gal & Cipolla, CVPR 2018): a learned
  log-variance :math:`s_t` per task,

  .. math:: \mathcal{L} = \sum_t \tfrac12 e^{-s_t} \mathcal{L}_t + \tfrac12 s_t,

  so noisy tasks are down-weighted automatically.
* :class:`PCGrad` (``"pcgrad"``; Yu et al., NeurIPS 2020, "Gradient Surgery for
  Multi-Task Learning"): per-task gradients of the shared parameters (encoder, message
  passing, synapses); where two conflict (negative dot product) one is projected onto the
  other's normal plane before they are summed. Task-specific parameters (projections,
  heads, embeddings) get their ordinary gradients. It needs one backward pass per task,
  so it is for hierarchies of up to :data:`PCGRAD_MAX_TASKS` tasks.

A strategy turns one batch's :class:`~taskgraph.model.loss.LossResult` into gradients:
``loss(result, kl_term)`` is the scalar that is logged and checked, ``backward(result,
loss, kl_term)`` fills ``.grad``. ``fit`` calls ``setup(model)`` once per run.

Example:
    >>> import torch
    >>> resolve_weighting("uncertainty"), resolve_weighting(PCGrad())
    (Uncertainty(), PCGrad())
    >>> w = UncertaintyWeighting(3)
    >>> per_task = torch.tensor([1.0, 2.0, 0.5]); labelled = torch.tensor([4, 4, 0])
    >>> round(float(w(per_task, labelled).detach()), 4)  # 0.5 * (1 + 2), task 3 has no labels
    1.5
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import Tensor, nn

from taskgraph.errors import ArgumentError
from taskgraph.vocabulary import suggest

__all__ = ["Weighting", "Static", "Uncertainty", "PCGrad", "WEIGHTINGS", "resolve_weighting",
           "UncertaintyWeighting", "pcgrad_backward", "PCGRAD_MAX_TASKS"]

PCGRAD_MAX_TASKS = 64


class Weighting:
    """How the tasks' losses are combined into one gradient; the base is :class:`Static`'s
    behaviour (the loss's own total, one backward pass).

    ``name``: its name in :data:`WEIGHTINGS` (``""`` for your own); ``distributed``:
    whether it works under DistributedDataParallel.
    """

    name = ""
    distributed = True

    def setup(self, model: nn.Module) -> "Weighting":
        """Bind to ``model`` at the start of a run (learned state starts afresh)."""
        return self

    def parameters(self) -> list[nn.Parameter]:
        """Parameters the optimizer trains besides the model's."""
        return []

    def loss(self, result: Any, kl_term: Tensor) -> Tensor:
        """The scalar objective of one batch (logged, checked for divergence)."""
        return result.total

    def backward(self, result: Any, loss: Tensor, kl_term: Tensor) -> None:
        """Fill the parameters' ``.grad`` for ``loss``."""
        loss.backward()

    def state_dict(self) -> dict[str, Any] | None:
        """Learned state for a checkpoint (``None``: nothing learned)."""
        return None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Inverse of :meth:`state_dict`."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Static(Weighting):
    """The YAML ``weight`` of each task (already applied in the model's loss)."""

    name = "static"


class Uncertainty(Weighting):
    """Learned homoscedastic-uncertainty weights (Kendall et al. 2018); after ``fit``,
    ``module_`` holds them (:class:`UncertaintyWeighting`)."""

    name = "uncertainty"
    module_: "UncertaintyWeighting"

    def setup(self, model: nn.Module) -> "Uncertainty":
        device = next(model.parameters()).device
        self.module_ = UncertaintyWeighting(model.layout.num_tasks).to(device)
        return self

    def parameters(self) -> list[nn.Parameter]:
        return list(self.module_.parameters())

    def loss(self, result: Any, kl_term: Tensor) -> Tensor:
        return self.module_(result.per_task, result.labelled) + kl_term

    def state_dict(self) -> dict[str, Any]:
        return self.module_.state_dict()

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state is not None:
            self.module_.load_state_dict(state)


class PCGrad(Weighting):
    """Gradient surgery on the shared parameters (Yu et al. 2020), see
    :func:`pcgrad_backward`. Its per-task gradients bypass DDP's gradient averaging, so
    it is refused in distributed runs."""

    name = "pcgrad"
    distributed = False

    def setup(self, model: nn.Module) -> "PCGrad":
        own = {id(p) for m in (model.projections, model.heads) for p in m.parameters()}
        own.add(id(model.task_embedding))
        params = [p for p in model.parameters() if p.requires_grad]
        self.shared_ = [p for p in params if id(p) not in own]
        self.own_ = [p for p in params if id(p) in own]
        self.task_weights_ = model.task_weights  # (T,)
        return self

    def backward(self, result: Any, loss: Tensor, kl_term: Tensor) -> None:
        weights = self.task_weights_ * (result.labelled > 0)  # (T,)
        scale = weights.sum().clamp_min(1e-12)
        pcgrad_backward(result.per_task * weights / scale, result.labelled, self.shared_,
                        self.own_, extra=kl_term, generator=None)


#: The strategies by name (``fit(weighting="static")``).
WEIGHTINGS: dict[str, type[Weighting]] = {cls.name: cls for cls in (Static, Uncertainty, PCGrad)}


def resolve_weighting(value: str | Weighting) -> Weighting:
    """A fresh strategy for a name of :data:`WEIGHTINGS`, or ``value`` itself.

    Raises:
        ArgumentError: an unknown name.
    """
    if isinstance(value, Weighting):
        return value
    if isinstance(value, str) and value in WEIGHTINGS:
        return WEIGHTINGS[value]()
    raise ArgumentError(f"fit: weighting: expected one of {', '.join(WEIGHTINGS)} or a "
                        f"Weighting, got {value!r}{suggest(value, WEIGHTINGS)}")


class UncertaintyWeighting(nn.Module):
    r"""Learned homoscedastic-uncertainty weights, :math:`\sum_t \frac12 e^{-s_t} L_t + \frac12 s_t`
    over the tasks labelled in the batch.

    Args:
        num_tasks (int): T.

    Shapes:
        per_task ``(T,)``, labelled ``(T,)`` -> a scalar.
    """

    def __init__(self, num_tasks: int) -> None:
        super().__init__()
        self.log_vars = nn.Parameter(torch.zeros(num_tasks))  # (T,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.log_vars)

    def forward(self, per_task: Tensor, labelled: Tensor) -> Tensor:
        present = (labelled > 0).to(per_task.dtype)  # (T,)
        s = self.log_vars.to(per_task.dtype)
        return (present * (0.5 * torch.exp(-s) * per_task + 0.5 * s)).sum()

    def weights(self) -> Tensor:
        """The current effective weights :math:`\\frac12 e^{-s_t}`: (T,)."""
        return 0.5 * torch.exp(-self.log_vars.detach())

    def extra_repr(self) -> str:
        return f"num_tasks={self.log_vars.numel()}"


def pcgrad_backward(per_task: Tensor, labelled: Tensor, shared: Iterable[nn.Parameter],
                    others: Iterable[nn.Parameter], extra: Tensor | None = None,
                    *, generator: torch.Generator | None = None) -> None:
    """Fill ``.grad`` of ``shared`` with the PCGrad combination of the per-task gradients
    and of ``others`` with the plain gradient of the summed loss.

    Args:
        per_task: ``(T,)`` weighted per-task losses (with graph).
        labelled: ``(T,)`` label counts; tasks without labels are left out.
        shared: parameters every task's loss depends on.
        others: the remaining trainable parameters.
        extra: a scalar added to the loss but not projected (e.g. the KL term).
        generator: for the random task order PCGrad projects in.
    """
    shared = [p for p in shared if p.requires_grad]
    others = [p for p in others if p.requires_grad]
    active = labelled.nonzero().flatten().tolist()
    if len(active) > PCGRAD_MAX_TASKS:
        raise ArgumentError(f"weighting='pcgrad' takes one backward pass per task and supports "
                         f"up to {PCGRAD_MAX_TASKS} labelled tasks per batch (got "
                         f"{len(active)}); use 'static' or 'uncertainty'")
    total = per_task[active].sum() + (extra if extra is not None else 0)
    grads = []
    for t in active:
        g = torch.autograd.grad(per_task[t], shared, retain_graph=True, allow_unused=True)
        grads.append(torch.cat([(x if x is not None else torch.zeros_like(p)).flatten()
                                for x, p in zip(g, shared)]))
    if extra is not None and extra.requires_grad:
        g = torch.autograd.grad(extra, shared, retain_graph=True, allow_unused=True)
        extra_grad = torch.cat([(x if x is not None else torch.zeros_like(p)).flatten()
                                for x, p in zip(g, shared)])
    else:
        extra_grad = None
    if grads:
        G = torch.stack(grads)  # (T_active, P)
        projected = G.clone()
        n = G.shape[0]
        for i in range(n):
            order = torch.randperm(n, generator=generator).tolist()
            for j in order:
                if j == i:
                    continue
                dot = projected[i] @ G[j]
                if dot < 0:
                    projected[i] -= dot / G[j].pow(2).sum().clamp_min(1e-20) * G[j]
        combined = projected.sum(0)
    else:
        combined = torch.zeros(sum(p.numel() for p in shared), device=per_task.device)
    if extra_grad is not None:
        combined = combined + extra_grad
    offset = 0
    for p in shared:
        chunk = combined[offset:offset + p.numel()].view_as(p)
        p.grad = chunk.clone() if p.grad is None else p.grad + chunk
        offset += p.numel()
    if others:
        g = torch.autograd.grad(total, others, allow_unused=True)
        for p, x in zip(others, g):
            if x is not None:
                p.grad = x if p.grad is None else p.grad + x
