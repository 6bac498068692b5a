r"""Loss balancing between tasks: static weights, learned uncertainty, PCGrad.

* ``static``: the YAML ``weight`` of each task.
* ``uncertainty`` (Kendall, Gal & Cipolla, CVPR 2018): a learned log-variance
  :math:`s_t` per task,

  .. math:: \mathcal{L} = \sum_t \tfrac12 e^{-s_t} \mathcal{L}_t + \tfrac12 s_t,

  so noisy tasks are down-weighted automatically.
* ``pcgrad`` (Yu et al., NeurIPS 2020, "Gradient Surgery for Multi-Task Learning"): per-task
  gradients of the shared parameters (encoder, message passing, synapses); where two
  conflict (negative dot product) one is projected onto the other's normal plane before
  they are summed. Task-specific parameters (projections, heads, embeddings) get their
  ordinary gradients. It needs one backward pass per task, so it is for hierarchies of up
  to :data:`PCGRAD_MAX_TASKS` tasks.

Example:
    >>> import torch
    >>> w = UncertaintyWeighting(3)
    >>> per_task = torch.tensor([1.0, 2.0, 0.5]); labelled = torch.tensor([4, 4, 0])
    >>> round(float(w(per_task, labelled).detach()), 4)  # 0.5 * (1 + 2), task 3 has no labels
    1.5
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor, nn

__all__ = ["WEIGHTINGS", "UncertaintyWeighting", "pcgrad_backward", "PCGRAD_MAX_TASKS"]

WEIGHTINGS = ("static", "uncertainty", "pcgrad")
PCGRAD_MAX_TASKS = 64


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
        raise ValueError(f"weighting='pcgrad' takes one backward pass per task and supports "
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
