"""One training epoch and one validation pass (the inner loops of ``fit``).

Per-step numbers stay on the device and are summed there; the host reads them once per
epoch, so the loop does not wait on the accelerator each step (except for the
divergence check).

Example:
    >>> import torch
    >>> noisy = _anneal(0.3, 0.55, 0)  # variance at step 0
    >>> round(noisy, 3)
    0.3
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn

from taskgraph.errors import DataError, TaskGraphError
from taskgraph.train.data import split_batch, to_device
from taskgraph.train.weighting import pcgrad_backward

__all__ = ["run_epoch", "validate_epoch"]

#: above this many tasks the history keeps no per-task losses (they would dominate it)
PER_TASK_LIMIT = 200


def _anneal(eta: float, gamma: float, step: int) -> float:
    """Gradient-noise variance η / (1 + t)^γ (Neelakantan et al. 2015)."""
    return eta / (1 + step) ** gamma


def run_epoch(net: nn.Module, model: Any, loader: Any, optimizer: torch.optim.Optimizer, *,
              epoch: int, epochs: int, beta: float, dataset_size: int | None, weighting: str,
              balancer: nn.Module | None, shared: list, own: list, grad_noise: float,
              gamma: float, noise_gen: torch.Generator, step: int, grad_clip: float | None,
              show: bool, device: torch.device,
              reduce: Callable[[torch.Tensor], torch.Tensor],
              world_size: int = 1) -> tuple[dict[str, Any], int]:
    """Train one epoch; returns the epoch's record and the global step count."""
    from tqdm.auto import tqdm

    net.train()
    T = model.layout.num_tasks
    sums = torch.zeros(4, device=device, dtype=torch.float64)  # loss, data, kl, examples
    task_sums = torch.zeros(T, device=device, dtype=torch.float64)
    task_counts = torch.zeros(T, device=device, dtype=torch.float64)
    batches = 0
    bar = tqdm(loader, desc=f"epoch {epoch}/{epochs}", disable=not show, leave=False,
               unit="batch", dynamic_ncols=True)
    for batch in bar:
        x, targets = split_batch(batch)
        x, targets = to_device(x, device), to_device(targets, device)
        out = net(x)
        res = model.loss(out, targets, dataset_size=dataset_size, kl_weight=beta)
        kl_term = beta * res.kl / dataset_size if dataset_size else res.kl * 0
        weights = model.task_weights * (res.labelled > 0)
        optimizer.zero_grad(set_to_none=True)
        if weighting == "uncertainty":
            total = balancer(res.per_task, res.labelled) + kl_term
        else:
            total = res.total
        if not torch.isfinite(total):
            raise TaskGraphError(f"training diverged at epoch {epoch}, step {step}: the loss "
                                 f"is {float(total.detach())}; lower the learning rate or "
                                 "check the data")
        if weighting == "pcgrad":
            scale = weights.sum().clamp_min(1e-12)
            pcgrad_backward(res.per_task * weights / scale, res.labelled, shared, own,
                            extra=kl_term, generator=None)
        else:
            total.backward()
        if balancer is not None and reduce is not None:  # outside DDP: average by hand
            for p in balancer.parameters():
                if p.grad is not None:
                    p.grad.copy_(reduce(p.grad) / world_size)
        if grad_noise > 0:
            std = _anneal(grad_noise, gamma, step) ** 0.5
            for p in model.parameters():
                if p.grad is not None:
                    p.grad.add_(torch.randn(p.grad.shape, generator=noise_gen, device=p.device,
                                            dtype=p.grad.dtype) * std)
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        step += 1
        batches += 1
        n = float(out.batch_size)
        sums += torch.stack([total.detach() * n, res.data.detach() * n,
                             res.kl.detach().to(sums.dtype) * n,
                             torch.tensor(n, device=device)]).to(sums.dtype)
        task_sums += (res.per_task.detach() * res.labelled).to(torch.float64)
        task_counts += res.labelled.to(torch.float64)
        if show and batches % 10 == 0:
            bar.set_postfix(loss=f"{float(total.detach()):.4f}")
    if batches == 0:
        raise DataError("fit: the training loader yields no batches")
    # a last step can leave inf / NaN weights behind a finite loss: refuse them here
    # rather than hand a broken model to validation, evaluation or save
    bad = next((name for name, p in model.named_parameters()
                if not bool(torch.isfinite(p).all())), None)
    if bad is not None:
        raise TaskGraphError(f"training diverged in epoch {epoch}: parameter {bad!r} is no "
                             "longer finite; lower the learning rate or check the data")
    sums, task_sums, task_counts = reduce(sums), reduce(task_sums), reduce(task_counts)
    n = float(sums[3])
    record: dict[str, Any] = {"loss": float(sums[0]) / n, "data": float(sums[1]) / n,
                              "kl": float(sums[2]) / n, "beta": beta}
    if T <= PER_TASK_LIMIT:
        means = (task_sums / task_counts.clamp_min(1)).tolist()
        record["per_task"] = {name: m for name, m, c in
                              zip(model.layout.names, means, task_counts.tolist()) if c > 0}
    return record, step


@torch.no_grad()
def validate_epoch(model: Any, loader: Any, device: torch.device, dataset_size: int | None,
                   beta: float, metrics: bool) -> dict[str, Any]:
    """Validation loss (eval mode, mean synapses) and, when asked, summary metrics."""
    was_training = model.training
    model.eval()
    total, data, count = 0.0, 0.0, 0
    try:
        for batch in loader:
            x, targets = split_batch(batch)
            out = model(to_device(x, device))
            res = model.loss(out, to_device(targets, device), dataset_size=dataset_size,
                             kl_weight=beta)
            total += float(res.total) * out.batch_size
            data += float(res.data) * out.batch_size
            count += out.batch_size
    finally:
        model.train(was_training)
    if count == 0:
        raise DataError("fit: the validation loader yields no batches")
    if not math.isfinite(total):
        raise TaskGraphError(f"training diverged: the validation loss is {total / count}; "
                             "lower the learning rate or check the data")
    record: dict[str, Any] = {"val_loss": total / count, "val_data": data / count}
    if metrics:
        try:
            from taskgraph.metrics import evaluate
        except ImportError:  # pragma: no cover - metrics layer absent
            return record
        report = evaluate(model, loader)
        record["val_overall"] = report.overall
        for key, value in report.hierarchy.items():
            if isinstance(value, (int, float)):
                record[f"val_{key}"] = value
        for task, values in report.tasks.items():
            for metric, value in values.items():
                if isinstance(value, (int, float)) and metric != "n":
                    record[f"{task}:{metric}"] = value
        model.train(was_training)
    return record

