r"""The HMC recipe's training budget: set by convergence, not by a fixed epoch cap.

The valid phase trains until the validation AU(PRC)-bar stops improving, under a
generous ceiling, and lowers the learning rate whenever it plateaus:

.. math::
    \text{plateau at epoch } e: \; s_e \le s^\star (1 + 10^{-4}) \text{ for more than }
    p_{lr} \text{ epochs in a row} \;\Rightarrow\; \eta \leftarrow \max(\gamma\,\eta,\,
    \eta_{min})

where :math:`s_e` is the epoch's valid AU(PRC)-bar and :math:`s^\star` the best so far
(``torch.optim.lr_scheduler.ReduceLROnPlateau`` in ``max`` mode, relative threshold
``1e-4``, its counter reset after every drop). Early stopping ends the phase after
``patience`` epochs without a strictly better :math:`s_e` and restores the best epoch
:math:`e^\star`. A small set that needs hundreds of epochs gets them; a set that
converges in thirty stops soon after.

**The refit replays the schedule.** The valid phase records the learning rate of every
epoch (:attr:`PlateauLR.lrs`, one list of param-group rates per epoch, also the
``lr`` column of the history). The refit on train + valid trains for :math:`e^\star`
epochs and :class:`ReplayLR` sets epoch :math:`e`'s rates to those of the valid phase's
epoch :math:`e` before it starts, so the drops happen after the same epochs. Nothing is
measured during the refit (there is no held-out data left to measure).

The defaults (``HMC_CONFIG["train"]``):

================= ======== =============================================================
key               default  meaning
================= ======== =============================================================
epochs            400      ceiling on the valid phase's epochs
patience          12       early stopping: epochs without a better valid score
lr                1e-3     Adam's initial learning rate
lr_patience       3        :math:`p_{lr}`: a drop after more plateau epochs in a row
lr_factor         0.3      :math:`\gamma`; 1.0 turns the schedule off
min_lr            1e-5     :math:`\eta_{min}`
batch_size        32       examples per step
weight_decay      1e-5     Adam's L2 penalty on shared parameters (none on the synapses)
task_weight_decay 5e-3     its per-task counterpart, divided by the number of tasks
kl_weight         1.0      β of the synapses' KL term
ema               0.995    decay of the moving average of the weights that is scored
================= ======== =============================================================

Example:
    >>> check_train_config({"epochs": 10, "patience": 3, "lr_patience": 1,
    ...                     "lr_factor": 0.5, "min_lr": 1e-6})
    >>> check_train_config({"lr_factor": 2.0})
    Traceback (most recent call last):
    ...
    taskgraph.errors.ArgumentError: train_hmc: train.lr_factor: expected a number in (0, 1], got 2.0
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from taskgraph.errors import ArgumentError
from taskgraph.train import Callback, TrainingState

__all__ = ["PlateauLR", "ReplayLR", "check_train_config"]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: key -> (test, what is expected): the checks of the recipe's training settings.
_CHECKS: dict[str, tuple[Any, str]] = {
    "epochs": (lambda v: _is_int(v) and v >= 1, "a positive integer"),
    "patience": (lambda v: _is_int(v) and v >= 1, "a positive integer"),
    "batch_size": (lambda v: _is_int(v) and v >= 1, "a positive integer"),
    "lr_patience": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "lr_factor": (lambda v: _is_number(v) and 0.0 < v <= 1.0, "a number in (0, 1]"),
    "min_lr": (lambda v: _is_number(v) and v >= 0.0, "a number >= 0"),
    "lr": (lambda v: _is_number(v) and v >= 0.0, "a number >= 0"),
    "weight_decay": (lambda v: _is_number(v) and v >= 0.0, "a number >= 0"),
    "task_weight_decay": (lambda v: v is None or (_is_number(v) and v >= 0.0),
                          "None or a number >= 0"),
}


def check_train_config(train: Mapping[str, Any], who: str = "train_hmc") -> None:
    """Raise :class:`~taskgraph.errors.ArgumentError` for a bad training setting.

    Only the keys present are checked (see the module docstring for their meaning).

    Example:
        >>> check_train_config({"epochs": 0}, who="search_hmc")
        Traceback (most recent call last):
        ...
        taskgraph.errors.ArgumentError: search_hmc: train.epochs: expected a positive integer, got 0
    """
    for key, (ok, expected) in _CHECKS.items():
        if key in train and not ok(train[key]):
            raise ArgumentError(f"{who}: train.{key}: expected {expected}, got {train[key]!r}")


class PlateauLR(Callback):
    """Reduce-on-plateau of a validation metric, with every epoch's rates recorded.

    Wraps ``torch.optim.lr_scheduler.ReduceLROnPlateau`` (``mode``: ``"max"``, relative
    threshold ``1e-4``) around the optimizer of the run it is passed to
    (``tg.fit(..., callbacks=[PlateauLR(...)])``): after each epoch it steps the scheduler
    with ``record[metric]``. ``factor=1.0`` leaves the rate alone (rates are still
    recorded).

    Attributes:
        lrs: per finished epoch, the rate of every param group during that epoch.
        drops: ``(epoch, new rates)`` for every epoch after which the rate fell.

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        >>> state = TrainingState(torch.nn.Linear(1, 1), opt)
        >>> plateau = PlateauLR("score", patience=0, factor=0.5)
        >>> for epoch, score in enumerate([0.1, 0.1, 0.2], start=1):
        ...     plateau.on_epoch_start(state, epoch)
        ...     plateau.on_epoch_end(state, {"epoch": epoch, "score": score})
        >>> plateau.lrs, plateau.drops
        ([[1.0], [1.0], [0.5]], [(2, [0.5])])
    """

    def __init__(self, metric: str, *, patience: int, factor: float,
                 min_lr: float = 0.0) -> None:
        check_train_config({"lr_patience": patience, "lr_factor": factor, "min_lr": min_lr},
                           who="PlateauLR")
        self.metric, self.patience, self.factor, self.min_lr = metric, patience, factor, min_lr
        self.lrs: list[list[float]] = []
        self.drops: list[tuple[int, list[float]]] = []
        self._scheduler: Any = None

    def on_epoch_start(self, state: TrainingState, epoch: int) -> None:
        if self._scheduler is None and self.factor < 1.0:
            self._scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                state.optimizer, mode="max", factor=self.factor, patience=self.patience,
                threshold=1e-4, threshold_mode="rel", min_lr=self.min_lr)
        self.lrs.append([float(g["lr"]) for g in state.optimizer.param_groups])

    def on_epoch_end(self, state: TrainingState, record: dict[str, Any]) -> None:
        if self._scheduler is None:
            return
        before = [float(g["lr"]) for g in state.optimizer.param_groups]
        self._scheduler.step(float(record[self.metric]))
        after = [float(g["lr"]) for g in state.optimizer.param_groups]
        if after != before:
            self.drops.append((int(record["epoch"]), after))


class ReplayLR(Callback):
    """Replays recorded learning rates epoch by epoch: before epoch ``e`` starts, every
    param group's rate is set to ``lrs[e - 1]`` (a :class:`PlateauLR`'s ``lrs``).

    Raises:
        ArgumentError: the run has more epochs or param groups than ``lrs`` holds.

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        >>> state = TrainingState(torch.nn.Linear(1, 1), opt)
        >>> ReplayLR([[1.0], [0.25]]).on_epoch_start(state, 2)
        >>> opt.param_groups[0]["lr"]
        0.25
    """

    def __init__(self, lrs: Sequence[Sequence[float]]) -> None:
        self.lrs = [list(map(float, rates)) for rates in lrs]

    def on_epoch_start(self, state: TrainingState, epoch: int) -> None:
        groups = state.optimizer.param_groups
        if epoch > len(self.lrs) or len(self.lrs[epoch - 1]) != len(groups):
            raise ArgumentError(f"ReplayLR: no recorded rates for epoch {epoch} with "
                                f"{len(groups)} param groups ({len(self.lrs)} epochs recorded)")
        for group, lr in zip(groups, self.lrs[epoch - 1]):
            group["lr"] = lr
