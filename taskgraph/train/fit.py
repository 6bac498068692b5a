"""``fit``: a plain PyTorch training loop for taskgraph models.

It samples synapses per example, scales the KL by the data-set size (with an optional
warm-up of β), balances tasks (:mod:`~taskgraph.train.weighting`), can add annealed
gradient noise, standardizes regression targets with statistics of the training data
(``standardize_targets``), can keep a moving average of the weights
(``weight_average``), validates (the loss, summary metrics, and a metric of your own:
``val_metric``), stops early on a named metric (restoring the best weights), and writes
an atomic checkpoint after every epoch from which ``resume=True`` continues bit-for-bit.
Under ``torchrun`` it trains with DistributedDataParallel. The run's state between
epochs is one :class:`~taskgraph.train.state.TrainingState`; the epoch itself is
:func:`~taskgraph.train.loop.run_epoch`.

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
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from taskgraph.errors import ArgumentError, DataError
from taskgraph.train.data import TaskDataset, split_batch
from taskgraph.train.decay import param_groups
from taskgraph.train.distributed import distributed_context
from taskgraph.train.history import History
from taskgraph.train.loop import GradientNoise, TrainingSetup, run_epoch, validate_epoch
from taskgraph.train.state import (TrainingState, capture_rng, make_average, read_checkpoint,
                                   restore_rng, seed_everything, write_atomic)
from taskgraph.train.weighting import Weighting, resolve_weighting

__all__ = ["fit", "EarlyStopping", "Callback", "make_optimizer"]

_LOWER_IS_BETTER = ("loss", "mse", "mae", "nll", "brier", "ece", "violation")


@dataclass
class EarlyStopping:
    """Stop when ``metric`` has not improved for ``patience`` epochs.

    ``metric``: ``"val_loss"``, a validation summary (``"val_overall"``,
    ``"val_auprc_bar"``, ``"val_hierarchical_f1"``), ``"TASK:METRIC"`` from the
    validation report, a key of ``fit``'s ``val_metric``, or a training number
    (``"loss"``). ``mode`` (``"min"`` / ``"max"``) is inferred from the name.
    """

    metric: str = "val_loss"
    patience: int = 5
    mode: str | None = None
    min_delta: float = 0.0
    restore_best: bool = True

    def __post_init__(self) -> None:
        if self.mode is None:
            self.mode = "min" if any(k in self.metric for k in _LOWER_IS_BETTER) else "max"
        if self.mode not in ("min", "max"):
            raise ArgumentError(f"EarlyStopping: mode: expected 'min' or 'max', got {self.mode!r}")
        if not isinstance(self.patience, int) or self.patience < 1:
            raise ArgumentError(f"EarlyStopping: patience: expected an integer >= 1, got "
                                f"{self.patience!r}")

    def improved(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value < best - self.min_delta if self.mode == "min" else value > best + self.min_delta

    def update(self, state: TrainingState, record: Mapping[str, Any]) -> bool:
        """Record the epoch ``record`` in ``state`` (best value, weights, bad epochs);
        returns whether to stop."""
        value = record.get(self.metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise ArgumentError(f"fit: early_stopping metric {self.metric!r} was not "
                                f"measured; available: {', '.join(sorted(record))}")
        if self.improved(value, state.best_value):
            state.best_value, state.bad_epochs = value, 0
            state.history.best_epoch = record["epoch"]
            state.best_state = state.snapshot()
            return False
        state.bad_epochs += 1
        state.history.stopped_early = state.bad_epochs >= self.patience
        return state.history.stopped_early


class Callback:
    """Hooks ``fit`` calls around every epoch; override the ones you need.

    ``on_epoch_start(state, epoch)`` runs before the epoch's first batch;
    ``on_epoch_end(state, record)`` after its record is in ``state.history``, early
    stopping has seen it and the checkpoint is written.
    """

    def on_epoch_start(self, state: TrainingState, epoch: int) -> None:
        """Before epoch ``epoch`` (1-based) trains."""

    def on_epoch_end(self, state: TrainingState, record: dict[str, Any]) -> None:
        """After the epoch of ``record["epoch"]``."""


def make_optimizer(params: Any, *, lr: float = 1e-3, weight_decay: float = 0.0
                   ) -> torch.optim.Optimizer:
    """Adam, fused into one kernel where the parameters' device supports it (about 4x
    faster per step on CPU for models with millions of task-projection weights).
    ``params``: parameters, or parameter groups (a group's ``weight_decay`` wins)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # e.g. an older torch or a dtype without it
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_args(epochs: Any, grad_noise: Any, kl_warmup: Any, seed: Any,
                weight_average: Any) -> None:
    if not _is_int(epochs) or epochs < 1:
        raise ArgumentError(f"fit: epochs: expected a positive integer, got {epochs!r}")
    if not grad_noise >= 0:
        raise ArgumentError(f"fit: grad_noise: expected a number >= 0, got {grad_noise!r}")
    if not kl_warmup >= 0:
        raise ArgumentError(f"fit: kl_warmup: expected a number >= 0, got {kl_warmup!r}")
    if seed is not None and not _is_int(seed):
        raise ArgumentError(f"fit: seed: expected an integer, got {seed!r}")
    if weight_average is not None and not 0.0 < weight_average < 1.0:
        raise ArgumentError(f"fit: weight_average: expected a decay in (0, 1) or None, got "
                            f"{weight_average!r}")


def fit(model: nn.Module, train_loader: Any, *, val_loader: Any = None, epochs: int,
        optimizer: torch.optim.Optimizer | None = None, lr: float = 1e-3,
        weight_decay: float = 0.0, task_weight_decay: float | None = None,
        scheduler: Any = None, weighting: str | Weighting = "static",
        grad_noise: float = 0.0, grad_noise_gamma: float = 0.55, kl_weight: float = 1.0,
        kl_warmup: int = 0, dataset_size: int | None = None,
        early_stopping: EarlyStopping | str | None = None,
        checkpoint_dir: str | os.PathLike | None = None, resume: bool = False,
        progress: bool = True, seed: int | None = None, grad_clip: float | None = None,
        val_metrics: bool = True, standardize_targets: bool = True,
        val_metric: Callable[[nn.Module, Any], Mapping[str, Any]] | None = None,
        weight_average: float | None = None, callbacks: Sequence[Callback] = ()) -> History:
    """Train ``model`` and return its :class:`History`.

    Args:
        model: a :class:`TaskGraphModel`.
        train_loader: batches ``(x, Y)`` or ``(x, {task: target})``.
        val_loader: validation batches (loss, and metrics when ``val_metrics``).
        epochs: number of epochs (in total, counting resumed ones).
        optimizer: default ``Adam(lr)`` with the L2 penalty of :mod:`taskgraph.train.decay`:
            ``weight_decay`` on shared parameters, ``task_weight_decay / T`` on each task's
            own (default: ``weight_decay``, undivided), none on the synapses' and stochastic
            layers' (their KL term is their prior); scheduler: stepped once an epoch.
        weighting: a :class:`~taskgraph.train.weighting.Weighting` or its name:
            ``"static"`` (YAML weights), ``"uncertainty"`` (learned, Kendall et al. 2018)
            or ``"pcgrad"`` (gradient surgery, Yu et al. 2020).
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
        val_metric: ``val_metric(model, val_loader) -> {name: value}``, called after each
            epoch's validation (eval mode, no gradients); its values join the epoch's
            record, so early stopping can watch them.
        weight_average: decay of an exponential moving average of the weights, updated
            after every optimizer step (``torch.optim.swa_utils.AveragedModel``).
            Validation, early stopping's best weights and the weights ``model`` ends with
            are the average's; it is part of the checkpoint.
        callbacks: :class:`Callback` objects called around every epoch.

    Raises:
        DataError: an empty loader or unusable targets. TaskGraphError: the loss diverged.
        CheckpointError: ``resume`` found a checkpoint of another hierarchy.
        ArgumentError: an argument out of range, an unknown weighting, early stopping on
            validation without ``val_loader``.
    """
    _check_args(epochs, grad_noise, kl_warmup, seed, weight_average)
    for name, value in (("weight_decay", weight_decay), ("task_weight_decay", task_weight_decay)):
        if value is not None and not (isinstance(value, (int, float))
                                      and not isinstance(value, bool) and value >= 0):
            raise ArgumentError(f"fit: {name}: expected a number >= 0, got {value!r}")
        if value is None and name == "weight_decay":
            raise ArgumentError("fit: weight_decay: expected a number >= 0, got None")
    strategy = resolve_weighting(weighting)
    if isinstance(early_stopping, str):
        early_stopping = EarlyStopping(early_stopping)
    if early_stopping is not None and val_loader is None and early_stopping.metric.startswith("val"):
        raise ArgumentError("fit: early_stopping on a validation metric needs val_loader")
    if val_metric is not None and val_loader is None:
        raise ArgumentError("fit: val_metric: needs val_loader")
    full_loader = train_loader  # every process's statistics come from all of the data
    with distributed_context(model, train_loader, seed=seed) as ctx:
        if not strategy.distributed and ctx.world_size > 1:
            raise ArgumentError(f"fit: weighting={strategy.name or strategy!r} computes "
                                "per-task gradients outside DistributedDataParallel's "
                                "gradient averaging; use 'static' or 'uncertainty' in "
                                "distributed runs")
        try:
            n_batches = len(ctx.loader)
        except TypeError:
            n_batches = None
        if n_batches == 0:
            raise DataError("fit: the training loader yields no batches")
        if dataset_size is None:
            dataset_size = len(getattr(ctx.loader, "dataset", [])) or None
        device = next(model.parameters()).device
        setup = TrainingSetup(
            ctx.net, ctx.loader, ctx, dataset_size,
            GradientNoise(grad_noise, grad_noise_gamma, torch.Generator(device=device)),
            grad_clip, show=progress and ctx.is_main and sys.stderr.isatty(), epochs=epochs)
        strategy.setup(model)
        state = TrainingState(model, _optimizer(model, strategy, optimizer, lr, weight_decay,
                                                task_weight_decay),
                              scheduler, strategy, generators=(
                                  getattr(ctx.loader, "generator", None), setup.noise.generator))
        path = os.path.join(os.fspath(checkpoint_dir), "last.pt") if checkpoint_dir else None
        _begin(state, full_loader, setup, path=path, resume=resume, seed=seed,
               standardize=standardize_targets, weight_average=weight_average)
        for epoch in range(state.epoch + 1, epochs + 1):
            if state.history.stopped_early:  # also a resumed run that had already stopped
                break
            ctx.set_epoch(epoch)
            for callback in callbacks:
                callback.on_epoch_start(state, epoch)
            beta = kl_weight * min(1.0, epoch / kl_warmup) if kl_warmup else kl_weight
            tic = time.perf_counter()
            record = run_epoch(setup, state, epoch, beta)
            if scheduler is not None:
                scheduler.step()
            if val_loader is not None:
                record.update(validate_epoch(state.scored, val_loader, dataset_size=dataset_size,
                                             beta=beta, metrics=val_metrics, metric=val_metric))
            record.update(epoch=epoch, lr=state.optimizer.param_groups[0]["lr"],
                          time=time.perf_counter() - tic)
            state.history.append(record)
            state.epoch = epoch
            if early_stopping is not None:
                early_stopping.update(state, record)
            if path and ctx.is_main:
                write_atomic(state.to_dict(), path)
            for callback in callbacks:
                callback.on_epoch_end(state, record)
        if state.average is not None:  # the model ends with the averaged weights ...
            model.load_state_dict(state.average.module.state_dict())
        if early_stopping is not None and early_stopping.restore_best \
                and state.best_state is not None:
            model.load_state_dict(state.best_state)  # ... or the best epoch's
    return state.history


def _optimizer(model: nn.Module, strategy: Weighting, optimizer: torch.optim.Optimizer | None,
               lr: float, weight_decay: float, task_weight_decay: float | None = None
               ) -> torch.optim.Optimizer:
    """``optimizer`` (or a new Adam) training ``model`` and the strategy's parameters."""
    if optimizer is None:  # no weight decay on what a KL term regularizes (train/decay.py)
        groups = param_groups(model, weight_decay, strategy.parameters(),
                              task_weight_decay=task_weight_decay)
        return make_optimizer(groups, lr=lr, weight_decay=weight_decay)
    if strategy.parameters():
        optimizer.add_param_group({"params": strategy.parameters()})
    return optimizer


def _begin(state: TrainingState, full_loader: Any, setup: TrainingSetup, *, path: str | None,
           resume: bool, seed: int | None, standardize: bool,
           weight_average: float | None) -> None:
    """Bring ``state`` to where the run starts: its checkpoint, or a fresh seeded start."""
    if path and resume and os.path.exists(path):
        if weight_average is not None:
            state.average = make_average(state.model, weight_average)  # filled from the file
        state.load_dict(read_checkpoint(path), source=path)
        return
    if seed is not None:
        seed_everything(seed, state.generators[0])
    setup.noise.generator.manual_seed(seed if seed is not None
                                      else int(torch.randint(0, 2**31, ()).item()))
    if path and setup.ctx.is_main:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    if standardize and state.model.target_loc is not None:
        _standardize_targets(state.model, full_loader)
    if weight_average is not None:  # after the target scaling: the average copies it
        state.average = make_average(state.model, weight_average)


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
                      "first and fit(..., standardize_targets=False))", stacklevel=4)
        return
    from taskgraph.model.targets import target_statistics

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
