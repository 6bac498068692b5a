"""One training epoch and one validation pass (the inner loops of ``fit``).

:func:`run_epoch` trains a :class:`~taskgraph.train.state.TrainingState` for one epoch
under a :class:`TrainingSetup` (what stays fixed over a run). Per-step numbers stay on
the device and are summed there; the host reads them once per epoch, so the loop does
not wait on the accelerator each step (except for the divergence check).

Example:
    >>> noise = GradientNoise(eta=0.3, gamma=0.5)
    >>> noise.variance(0), noise.variance(3)  # η / (1 + t)^γ
    (0.3, 0.15)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import torch
from torch import nn

from taskgraph.errors import TaskGraphError
from taskgraph.model.batches import iter_batches
from taskgraph.train.distributed import DistributedContext
from taskgraph.train.state import TrainingState

__all__ = ["TrainingSetup", "GradientNoise", "run_epoch", "validate_epoch", "PER_TASK_LIMIT"]

#: above this many tasks the history keeps no per-task losses (they would dominate it)
PER_TASK_LIMIT = 200


@dataclass
class GradientNoise:
    r"""Annealed gradient noise (Neelakantan et al. 2015): after each backward pass
    every gradient gets :math:`\mathcal{N}(0, \eta / (1 + t)^\gamma)` added, :math:`t`
    counting optimizer steps over the whole run; ``eta = 0`` adds nothing."""

    eta: float = 0.0
    gamma: float = 0.55
    generator: torch.Generator = field(default_factory=torch.Generator)

    def variance(self, step: int) -> float:
        """:math:`\\eta / (1 + t)^\\gamma` at step ``t``."""
        return self.eta / (1 + step) ** self.gamma

    def add(self, params: Iterable[nn.Parameter], step: int) -> None:
        if self.eta <= 0:
            return
        std = self.variance(step) ** 0.5
        for p in params:
            if p.grad is not None:
                p.grad.add_(torch.randn(p.grad.shape, generator=self.generator, device=p.device,
                                        dtype=p.grad.dtype) * std)


@dataclass
class TrainingSetup:
    """What stays fixed over a run: the module called (the model, or its DDP wrapper),
    the training batches, the process group, N dividing the KL, the gradient noise and
    clipping, whether to draw a progress bar, and the planned number of epochs."""

    net: nn.Module
    loader: Any
    ctx: DistributedContext
    dataset_size: int | None
    noise: GradientNoise
    grad_clip: float | None = None
    show: bool = False
    epochs: int = 1


def run_epoch(setup: TrainingSetup, state: TrainingState, epoch: int,
              beta: float) -> dict[str, Any]:
    """Train one epoch (``state.step`` advances); returns the epoch's record."""
    from tqdm.auto import tqdm

    model, optimizer, weighting, N = state.model, state.optimizer, state.weighting, \
        setup.dataset_size
    device = next(model.parameters()).device
    setup.net.train()
    T = model.layout.num_tasks
    sums = torch.zeros(4, device=device, dtype=torch.float64)  # loss, data, kl, examples
    task_sums = torch.zeros(T, device=device, dtype=torch.float64)
    task_counts = torch.zeros(T, device=device, dtype=torch.float64)
    batches = 0
    bar = tqdm(setup.loader, desc=f"epoch {epoch}/{setup.epochs}", disable=not setup.show,
               leave=False, unit="batch", dynamic_ncols=True)
    for x, targets in iter_batches(bar, device, who="fit"):
        out = setup.net(x)
        res = model.loss(out, targets, dataset_size=N, kl_weight=beta)
        kl_term = res.kl_term  # β·KL/(N·W), as in res.total
        optimizer.zero_grad(set_to_none=True)
        total = weighting.loss(res, kl_term)
        if not torch.isfinite(total):
            raise TaskGraphError(f"training diverged at epoch {epoch}, step {state.step}: the "
                                 f"loss is {float(total.detach())}; lower the learning rate "
                                 "or check the data")
        weighting.backward(res, total, kl_term)
        setup.ctx.average_gradients(weighting.parameters())  # they are outside DDP
        setup.noise.add(model.parameters(), state.step)
        if setup.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), setup.grad_clip)
        optimizer.step()
        if state.average is not None:
            state.average.update_parameters(model)
        state.step += 1
        batches += 1
        n = float(out.batch_size)
        sums += torch.stack([total.detach() * n, res.data.detach() * n,
                             res.kl.detach().to(sums.dtype) * n,
                             torch.tensor(n, device=device)]).to(sums.dtype)
        task_sums += (res.per_task.detach() * res.labelled).to(torch.float64)
        task_counts += res.labelled.to(torch.float64)
        if setup.show and batches % 10 == 0:
            bar.set_postfix(loss=f"{float(total.detach()):.4f}")
    # a last step can leave inf / NaN weights behind a finite loss: refuse them here
    # rather than hand a broken model to validation, evaluation or save
    bad = next((name for name, p in model.named_parameters()
                if not bool(torch.isfinite(p).all())), None)
    if bad is not None:
        raise TaskGraphError(f"training diverged in epoch {epoch}: parameter {bad!r} is no "
                             "longer finite; lower the learning rate or check the data")
    reduce = setup.ctx.all_reduce
    sums, task_sums, task_counts = reduce(sums), reduce(task_sums), reduce(task_counts)
    n = float(sums[3])
    record: dict[str, Any] = {"loss": float(sums[0]) / n, "data": float(sums[1]) / n,
                              "kl": float(sums[2]) / n, "beta": beta}
    if T <= PER_TASK_LIMIT:
        means = (task_sums / task_counts.clamp_min(1)).tolist()
        record["per_task"] = {name: m for name, m, c in
                              zip(model.layout.names, means, task_counts.tolist()) if c > 0}
    return record


@torch.no_grad()
def validate_epoch(model: Any, loader: Any, *, dataset_size: int | None, beta: float,
                   metrics: bool = True,
                   metric: Callable[[Any, Any], Mapping[str, Any]] | None = None
                   ) -> dict[str, Any]:
    """Validation loss (eval mode, mean synapses) and, when asked, summary metrics
    (``metrics``: :func:`~taskgraph.metrics.evaluate`'s) and ``metric(model, loader)``'s
    values, all in eval mode; the model's mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        record = _validation_loss(model, loader, dataset_size, beta)
        if metrics:
            record.update(_summary_metrics(model, loader))
        if metric is not None:
            record.update(metric(model, loader))
    finally:
        model.train(was_training)
    return record


def _validation_loss(model: Any, loader: Any, dataset_size: int | None,
                     beta: float) -> dict[str, Any]:
    device = next(model.parameters()).device
    total, data, count = 0.0, 0.0, 0
    for x, targets in iter_batches(loader, device, who="fit (validation)"):
        out = model(x)
        res = model.loss(out, targets, dataset_size=dataset_size, kl_weight=beta)
        total += float(res.total) * out.batch_size
        data += float(res.data) * out.batch_size
        count += out.batch_size
    if not math.isfinite(total):
        raise TaskGraphError(f"training diverged: the validation loss is {total / count}; "
                             "lower the learning rate or check the data")
    return {"val_loss": total / count, "val_data": data / count}


def _summary_metrics(model: Any, loader: Any) -> dict[str, Any]:
    """:func:`~taskgraph.metrics.evaluate`'s numbers as ``val_*`` and ``TASK:METRIC``."""
    from taskgraph.metrics import evaluate  # same layer; imported when used (sklearn)

    report = evaluate(model, loader)
    record: dict[str, Any] = {"val_overall": report.overall}
    for key, value in report.hierarchy.items():
        if isinstance(value, (int, float)):
            record[f"val_{key}"] = value
    for task, values in report.tasks.items():
        for name, value in values.items():
            if isinstance(value, (int, float)) and name != "n":
                record[f"{task}:{name}"] = value
    return record
