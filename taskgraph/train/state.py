"""Training state: everything needed to continue a run exactly where it stopped.

:class:`TrainingState` is what ``fit`` carries from one epoch to the next, and its
:meth:`~TrainingState.to_dict` is exactly what a checkpoint holds: the model and
optimizer (and scheduler, loss-weighting and weight-average) states, the epoch and step
counters, the history, the early-stopping record, and every random-number state that
affects training: torch's (CPU and CUDA), numpy's, Python's, the data loader's generator
and the gradient-noise generator. It contains only tensors and plain data and is read
with ``weights_only=True``. Files are written to a temporary name and renamed, so a run
killed mid-write leaves the previous checkpoint intact.

Example:
    >>> rng = capture_rng()
    >>> import torch; a = torch.rand(1); restore_rng(rng); b = torch.rand(1)
    >>> bool(a == b)
    True
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from taskgraph.atomic import atomic_write
from taskgraph.errors import CheckpointError
from taskgraph.train.history import History

if TYPE_CHECKING:  # pragma: no cover
    from taskgraph.train.weighting import Weighting

__all__ = ["TrainingState", "FORMAT", "capture_rng", "restore_rng", "seed_everything",
           "make_average", "write_atomic", "read_checkpoint", "safe_torch_load"]

#: The ``format`` field of a training checkpoint.
FORMAT = "taskgraph-training"


@dataclass(eq=False)
class TrainingState:
    """A run in progress: the live objects it trains and the counters it keeps.

    ``epoch`` counts finished epochs; ``step`` optimizer steps over all of them;
    ``best_value`` / ``best_state`` / ``bad_epochs`` are early stopping's record (the
    best value of its metric, a CPU copy of the scored weights then, epochs since);
    ``average`` is the moving average of the weights (``fit(weight_average=...)``);
    ``generators`` are the loader's and the gradient noise's (either may be ``None``).

    Example:
        >>> import taskgraph as tg
        >>> model = tg.compile("hierarchies/animals.yaml", in_features=6, task_dim=4)
        >>> state = TrainingState(model, torch.optim.SGD(model.parameters(), lr=0.1))
        >>> payload = state.to_dict()
        >>> payload["format"], payload["epoch"], payload["average"]
        ('taskgraph-training', 0, None)
        >>> state.load_dict(payload)
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any = None
    weighting: "Weighting | None" = None
    average: Any = None  # torch.optim.swa_utils.AveragedModel
    generators: tuple[torch.Generator | None, ...] = ()
    epoch: int = 0
    step: int = 0
    history: History = field(default_factory=History)
    best_value: float | None = None
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0

    @property
    def scored(self) -> nn.Module:
        """The weights that are validated and returned: the average when there is one."""
        return self.model if self.average is None else self.average.module

    def snapshot(self) -> dict[str, torch.Tensor]:
        """A CPU copy of the scored weights (early stopping's best state)."""
        return {k: v.detach().cpu().clone() for k, v in self.scored.state_dict().items()}

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint: plain data and tensors only."""
        return {
            "format": FORMAT, "epoch": self.epoch, "step": self.step,
            "hierarchy": self.model.hierarchy.to_dict(),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "balancer": self.weighting.state_dict() if self.weighting is not None else None,
            "average": self.average.state_dict() if self.average is not None else None,
            "history": self.history.to_dict(), "bad_epochs": self.bad_epochs,
            "best_value": self.best_value, "best_state": self.best_state,
            "rng": capture_rng(*self.generators)}

    def load_dict(self, payload: dict[str, Any], *, source: str = "checkpoint") -> None:
        """Restore a checkpoint into the live objects (the inverse of :meth:`to_dict`).

        Checkpoints written before weight averaging existed (no ``average`` entry) load
        as they did; one without an average cannot continue a run that keeps one.

        Raises:
            CheckpointError: ``payload`` is for another hierarchy, has no weight
                average for a run that keeps one, or another number of optimizer
                parameter groups. ``source`` names it in messages.
        """
        theirs = payload["hierarchy"]
        if theirs != self.model.hierarchy.to_dict():
            raise CheckpointError(f"{source}: this checkpoint is for hierarchy "
                                  f"{theirs.get('name')!r}, not {self.model.hierarchy.name!r}")
        if self.average is not None and payload.get("average") is None:
            raise CheckpointError(f"{source}: this checkpoint was written without "
                                  "weight_average; resume it without weight_average, or "
                                  "start a fresh run")
        self.model.load_state_dict(payload["model"])
        theirs_groups = len(payload["optimizer"].get("param_groups", ()))
        if theirs_groups != len(self.optimizer.param_groups):
            raise CheckpointError(
                f"{source}: this checkpoint's optimizer has {theirs_groups} parameter "
                f"group(s), this run's {len(self.optimizer.param_groups)} (with weight_decay > 0 "
                "the synapses and stochastic layers are a group of their own, without "
                "weight decay; checkpoints written before that have one group); resume "
                "with the settings that wrote it, or start a fresh run")
        self.optimizer.load_state_dict(payload["optimizer"])
        if self.scheduler is not None and payload.get("scheduler") is not None:
            self.scheduler.load_state_dict(payload["scheduler"])
        if self.weighting is not None:
            self.weighting.load_state_dict(payload.get("balancer"))
        if self.average is not None:
            self.average.load_state_dict(payload["average"])
        self.history = History.from_dict(payload["history"])
        self.epoch, self.step = payload["epoch"], payload["step"]
        self.bad_epochs = payload["bad_epochs"]
        self.best_value, self.best_state = payload["best_value"], payload["best_state"]
        restore_rng(payload["rng"], *self.generators)


def seed_everything(seed: int, *generators: torch.Generator | None) -> None:
    """Seed torch (CPU and CUDA), numpy, :mod:`random` and ``generators`` with ``seed``.

    Example:
        >>> seed_everything(3); a = torch.rand(2)
        >>> seed_everything(3); torch.equal(a, torch.rand(2))
        True
    """
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    for g in generators:
        if g is not None:
            g.manual_seed(seed)


def make_average(model: nn.Module, decay: float) -> Any:
    """An exponential moving average of ``model``'s parameters (its buffers follow the
    model's): ``AveragedModel`` with ``get_ema_multi_avg_fn(decay)``; the first
    ``update_parameters`` copies the weights, each later one moves the average
    ``1 - decay`` of the way to them."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))


def capture_rng(*generators: torch.Generator | None) -> dict[str, Any]:
    """The current random states (plus those of ``generators``) as plain data."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, state, gauss = random.getstate()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                  "has_gauss": has_gauss, "cached": cached},
        "python": {"version": version, "state": list(state), "gauss": gauss},
        "generators": [g.get_state() if g is not None else None for g in generators],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def restore_rng(state: dict[str, Any], *generators: torch.Generator | None) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    for g, s in zip(generators, state.get("generators", [])):
        if g is not None and s is not None:
            g.set_state(s)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_atomic(payload: dict[str, Any], path: str | os.PathLike) -> None:
    """``torch.save`` through :func:`taskgraph.atomic.atomic_write` (fsync, then rename)."""
    with atomic_write(path, "wb") as fh:
        torch.save(payload, fh)


def safe_torch_load(path: str | os.PathLike, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` with one clear message for a bad file.

    ``what`` names the expected file in messages (``"taskgraph checkpoint"``). An empty
    file, a file that is not a torch archive (text, say), a damaged archive and one that
    holds objects other than tensors and plain data (which taskgraph never unpickles)
    each raise a :class:`CheckpointError` naming the file.

    >>> import tempfile
    >>> path = tempfile.mkdtemp() + "/notes.pt"
    >>> _ = open(path, "w").write("hello")
    >>> safe_torch_load(path, "taskgraph checkpoint")
    Traceback (most recent call last):
    ...
    taskgraph.errors.CheckpointError: .../notes.pt: not a taskgraph checkpoint: not a torch archive (it starts with 'hello', text)
    """
    path = os.fspath(path)
    with open(path, "rb") as fh:  # a missing file stays a FileNotFoundError
        head = fh.read(16)
    if not head:
        raise CheckpointError(f"{path}: not a {what}: the file is empty")
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):  # zip / legacy pickle
        text = head.decode("utf-8", "replace")
        kind = ", text" if text.isprintable() else ""
        raise CheckpointError(f"{path}: not a {what}: not a torch archive (it starts with "
                              f"{text[:8]!r}{kind})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged archive fails in many ways; all mean "damaged"
        message = str(err).strip()
        if "weights_only" in message or "Unsupported global" in message:
            reason = ("it holds Python objects other than tensors and plain data, which "
                      "taskgraph does not load")
        else:
            first = message.splitlines()[0][:200] if message else ""
            reason = f"truncated or corrupt ({type(err).__name__}{': ' + first if first else ''})"
        raise CheckpointError(f"{path}: not a readable {what}: {reason}") from None


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a training checkpoint safely (``weights_only=True``).

    Raises:
        CheckpointError: the file is unreadable or not a taskgraph training checkpoint.
    """
    payload = safe_torch_load(path, "taskgraph training checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{os.fspath(path)}: not a taskgraph training checkpoint")
    return payload
