"""``fit``: a plain PyTorch training loop for taskgraph models.

It samples synapses per example, scales the KL by the data-set size (with an optional
warm-up of β), balances tasks (``static``, ``uncertainty`` or ``pcgrad``), can add
annealed gradient noise, standardizes regression targets with statistics of the training
data (``standardize_targets``), validates, stops early on a named metric (restoring the
best weights), and writes an atomic checkpoint after every epoch from which ``resume=True``
continues bit-for-bit. Under ``torchrun`` it trains with DistributedDataParallel.

Example:
    >>> import torch, taskgraph as tg
    >>> from taskgraph.train import TaskDataset, make_loader
    >>> h = tg.load_hierarchy("hierarchies/cell_functions.yaml")
    >>> model = tg.compile(h, in_features=4, task_dim=4, encoder_spec={"hidden": [8]})
    >>> data = TaskDataset(torch.randn(32, 4), torch.randint(0, 2, (32, 7)).float(), h)
    >>> history = tg.fit(model, make_loader(data, batch_size=8), epochs=2, progress=False, seed=0)
    >>> history["epoch"], "kl" in history.keys()
    ([1, 2], True)
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from taskgraph.errors import CheckpointError, DataError
from taskgraph.train.data import TaskDataset, split_batch
from taskgraph.train.distributed import distributed_context
from taskgraph.train.history import History
from taskgraph.train.loop import run_epoch, validate_epoch
from taskgraph.train.state import capture_rng, read_checkpoint, restore_rng, write_atomic
from taskgraph.train.weighting import WEIGHTINGS, UncertaintyWeighting

__all__ = ["fit", "EarlyStopping", "make_optimizer"]

_LOWER_IS_BETTER = ("loss", "mse", "mae", "nll", "brier", "ece", "violation")


@dataclass
class EarlyStopping:
    """Stop when ``metric`` has not improved for ``patience`` epochs.

    ``metric``: ``"val_loss"``, a validation summary (``"val_overall"``,
    ``"val_auprc_bar"``, ``"val_hierarchical_f1"``), or ``"TASK:METRIC"`` from the
    validation report. ``mode`` (``"min"`` / ``"max"``) is inferred from the name.
    """

    metric: str = "val_loss"
    patience: int = 5
    mode: str | None = None
    min_delta: float = 0.0
    restore_best: bool = True

    def __post_init__(self) -> None:
        if self.mode is None:
            self.mode = "min" if any(k in self.metric for k in _LOWER_IS_BETTER) else "max"
        if self.mode not in ("min", "max") or self.patience < 1:
            raise ValueError(f"EarlyStopping: expected mode 'min'/'max' and patience >= 1, "
                             f"got {self.mode!r}, {self.patience!r}")

    def improved(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value < best - self.min_delta if self.mode == "min" else value > best + self.min_delta


def make_optimizer(params: Any, *, lr: float = 1e-3, weight_decay: float = 0.0
                   ) -> torch.optim.Optimizer:
    """Adam, fused into one kernel where the parameters' device supports it (about 4x
    faster per step on CPU for models with millions of task-projection weights)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # e.g. an older torch or a dtype without it
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def _check_args(epochs: Any, weighting: str, grad_noise: float, kl_warmup: int) -> None:
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"fit: epochs: expected a positive integer, got {epochs!r}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"fit: weighting: expected one of {', '.join(WEIGHTINGS)}, "
                         f"got {weighting!r}")
    if not grad_noise >= 0 or not kl_warmup >= 0:
        raise ValueError("fit: grad_noise and kl_warmup must be >= 0")


def _shared_params(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    own = {id(p) for m in (model.projections, model.heads) for p in m.parameters()}
    own.add(id(model.task_embedding))
    params = [p for p in model.parameters() if p.requires_grad]
    return [p for p in params if id(p) not in own], [p for p in params if id(p) in own]


def fit(model: nn.Module, train_loader: Any, *, val_loader: Any = None, epochs: int,
        optimizer: torch.optim.Optimizer | None = None, lr: float = 1e-3,
        weight_decay: float = 0.0, scheduler: Any = None, weighting: str = "static",
        grad_noise: float = 0.0, grad_noise_gamma: float = 0.55, kl_weight: float = 1.0,
        kl_warmup: int = 0, dataset_size: int | None = None,
        early_stopping: EarlyStopping | str | None = None,
        checkpoint_dir: str | os.PathLike | None = None, resume: bool = False,
        progress: bool = True, seed: int | None = None, grad_clip: float | None = None,
        val_metrics: bool = True, standardize_targets: bool = True) -> History:
    """Train ``model`` and return its :class:`History`.

    Args:
        model: a :class:`TaskGraphModel`.
        train_loader: batches ``(x, Y)`` or ``(x, {task: target})``.
        val_loader: validation batches (loss, and metrics when ``val_metrics``).
        epochs: number of epochs (in total, counting resumed ones).
        optimizer: default ``Adam(lr, weight_decay)``; scheduler: stepped once an epoch.
        weighting: ``"static"`` (YAML weights), ``"uncertainty"`` (learned, Kendall et al.
            2018) or ``"pcgrad"`` (gradient surgery, Yu et al. 2020).
        grad_noise: η of annealed gradient noise N(0, η / (1 + step)^γ) (Neelakantan et
            al. 2015), the stochastic weight updates; ``grad_noise_gamma`` is γ.
        kl_weight: β of the KL term; ``kl_warmup``: epochs over which β ramps up from 0.
        dataset_size: N dividing the KL (default: the size of the training data set).
        early_stopping: an :class:`EarlyStopping` or a metric name (patience 5).
        checkpoint_dir: write ``last.pt`` there after every epoch (rank 0 only).
        resume: continue from ``checkpoint_dir/last.pt`` if it exists.
        progress: a tqdm bar (only on a terminal, only on rank 0).
        seed: seeds torch, numpy, Python and the loader's generator (fresh runs only).
        grad_clip: clip the gradient norm to this value.
        standardize_targets: on a fresh run of a hierarchy with regression tasks, set the
            model's ``target_loc`` / ``target_scale`` to the mean and population std of
            each regression output's known training values (from ``train_loader.dataset``
            when it is a :class:`TaskDataset`, else one pass over ``train_loader`` that
            leaves its order and all random states as they were), so the loss sees
            ``(y - loc) / scale`` and ``predict`` returns ``loc + scale·f(x)`` (the
            history's losses are in standardized units, ``evaluate``'s MSE and MAE in the
            targets'). Resumed runs keep the checkpoint's statistics. ``False`` leaves
            the model's scaling as it is (none, unless set with
            ``model.fit_target_scaling``): the opt-out, and the choice for fine-tuning a
            trained model on other data.

    Raises:
        DataError: an empty loader or unusable targets. TaskGraphError: the loss diverged.
        CheckpointError: ``resume`` found a checkpoint of another hierarchy.
    """
    _check_args(epochs, weighting, grad_noise, kl_warmup)
    if isinstance(early_stopping, str):
        early_stopping = EarlyStopping(early_stopping)
    if early_stopping is not None and val_loader is None and early_stopping.metric.startswith("val"):
        raise ValueError("fit: early_stopping on a validation metric needs val_loader")
    device = next(model.parameters()).device
    full_loader = train_loader  # every process's statistics come from all of the data
    ctx = distributed_context(model, train_loader, seed=seed)
    train_loader = ctx.loader
    try:
        n_batches = len(train_loader)
    except TypeError:
        n_batches = None
    if n_batches == 0:
        raise DataError("fit: the training loader yields no batches")
    if dataset_size is None:
        dataset_size = len(getattr(train_loader, "dataset", [])) or None
    balancer = UncertaintyWeighting(model.layout.num_tasks).to(device) \
        if weighting == "uncertainty" else None
    if optimizer is None:
        params = list(model.parameters()) + (list(balancer.parameters()) if balancer else [])
        optimizer = make_optimizer(params, lr=lr, weight_decay=weight_decay)
    elif balancer is not None:
        optimizer.add_param_group({"params": list(balancer.parameters())})
    loader_gen = getattr(train_loader, "generator", None)
    noise_gen = torch.Generator(device=device)
    history, start, best_value, best_state, bad_epochs, step = History(), 0, None, None, 0, 0
    path = os.path.join(os.fspath(checkpoint_dir), "last.pt") if checkpoint_dir else None
    if path and resume and os.path.exists(path):
        ckpt = read_checkpoint(path)
        if ckpt["hierarchy"] != model.hierarchy.to_dict():
            raise CheckpointError(f"{path}: this checkpoint is for hierarchy "
                                  f"{ckpt['hierarchy'].get('name')!r}, not {model.hierarchy.name!r}")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None and ckpt.get("scheduler") is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        if balancer is not None and ckpt.get("balancer") is not None:
            balancer.load_state_dict(ckpt["balancer"])
        history = History.from_dict(ckpt["history"])
        start, step, bad_epochs = ckpt["epoch"], ckpt["step"], ckpt["bad_epochs"]
        best_value, best_state = ckpt["best_value"], ckpt["best_state"]
        restore_rng(ckpt["rng"], loader_gen, noise_gen)
    else:
        if seed is not None:
            _seed_everything(seed, loader_gen)
        noise_gen.manual_seed(seed if seed is not None else int(torch.randint(0, 2**31, ()).item()))
        if path and ctx.is_main:
            os.makedirs(os.fspath(checkpoint_dir), exist_ok=True)
        if standardize_targets and model.target_loc is not None:
            _standardize_targets(model, full_loader)
    if history.stopped_early:  # resumed after the run had already stopped early
        if early_stopping is not None and early_stopping.restore_best and best_state is not None:
            model.load_state_dict(best_state)
        ctx.close()
        return history
    if weighting == "pcgrad" and ctx.world_size > 1:
        raise ValueError("fit: weighting='pcgrad' computes per-task gradients outside "
                         "DistributedDataParallel's gradient averaging; use 'static' or "
                         "'uncertainty' in distributed runs")
    shared, own = _shared_params(model)
    show = progress and ctx.is_main and sys.stderr.isatty()
    for epoch in range(start + 1, epochs + 1):
        ctx.set_epoch(epoch)
        beta = kl_weight * min(1.0, epoch / kl_warmup) if kl_warmup else kl_weight
        tic = time.perf_counter()
        record, step = run_epoch(
            ctx.net, model, train_loader, optimizer, epoch=epoch, epochs=epochs, beta=beta,
            dataset_size=dataset_size, weighting=weighting, balancer=balancer, shared=shared,
            own=own, grad_noise=grad_noise, gamma=grad_noise_gamma, noise_gen=noise_gen,
            step=step, grad_clip=grad_clip, show=show, device=device, reduce=ctx.all_reduce,
            world_size=ctx.world_size)
        if scheduler is not None:
            scheduler.step()
        if val_loader is not None:
            record.update(validate_epoch(model, val_loader, device, dataset_size, beta,
                                         val_metrics))
        record.update(epoch=epoch, lr=optimizer.param_groups[0]["lr"],
                      time=time.perf_counter() - tic)
        history.append(record)
        stop = False
        if early_stopping is not None:
            value = record.get(early_stopping.metric)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                raise ValueError(f"fit: early_stopping metric {early_stopping.metric!r} was not "
                                 f"measured; available: {', '.join(sorted(record))}")
            if early_stopping.improved(value, best_value):
                best_value, bad_epochs, history.best_epoch = value, 0, epoch
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            else:
                bad_epochs += 1
                stop = bad_epochs >= early_stopping.patience
                history.stopped_early = stop
        if path and ctx.is_main:
            write_atomic({
                "format": "taskgraph-training", "epoch": epoch, "step": step,
                "hierarchy": model.hierarchy.to_dict(), "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "balancer": balancer.state_dict() if balancer is not None else None,
                "history": history.to_dict(), "bad_epochs": bad_epochs,
                "best_value": best_value, "best_state": best_state,
                "rng": capture_rng(loader_gen, noise_gen)}, path)
        if stop:
            break
    if early_stopping is not None and early_stopping.restore_best and best_state is not None:
        model.load_state_dict(best_state)
    ctx.close()
    return history


def _standardize_targets(model: nn.Module, loader: Any) -> None:
    """Fit ``model``'s regression target scaling on the whole training set."""
    data = getattr(loader, "dataset", None)
    if isinstance(data, TaskDataset):
        model.fit_target_scaling(data.targets)
        return
    if isinstance(loader, Iterator):  # iter() on a DataLoader would draw from its generator
        warnings.warn("fit: standardize_targets needs a second pass over the training data, "
                      "but train_loader is a one-shot iterator; the model's target scaling is "
                      "left as it is (pass a DataLoader, or call model.fit_target_scaling(Y) "
                      "first and fit(..., standardize_targets=False))", stacklevel=3)
        return
    from taskgraph.model.loss import target_statistics

    gen = getattr(loader, "generator", None)
    rng = capture_rng(gen)  # the pass must not change the training order or any draw
    try:
        parts = []
        for b, batch in enumerate(loader):
            _, targets = split_batch(batch)
            if targets is None:
                raise DataError(f"fit: training batch {b} has no targets")
            parts.append(model.regression_targets(targets))  # (B, R)
    finally:
        restore_rng(rng, gen)
    if parts:
        model.set_target_scaling(*target_statistics(torch.cat(parts)))  # (N, R)


def _seed_everything(seed: int, loader_gen: torch.Generator | None) -> None:
    import random

    import numpy as np

    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"fit: seed: expected an integer, got {seed!r}")
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    if loader_gen is not None:
        loader_gen.manual_seed(seed)
