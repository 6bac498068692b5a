"""The parameters of :class:`~taskgraph.sklearn.TaskGraphClassifier`, checked from one
declared table with one message format, and the private random state its ``fit`` and
sampled predictions run under.

Example:
    >>> from types import SimpleNamespace
    >>> est = SimpleNamespace(**{**{name: None for name in PARAMETERS}, "epochs": 0})
    >>> check_parameters(est, "TaskGraphClassifier")
    Traceback (most recent call last):
    ...
    taskgraph.errors.ArgumentError: TaskGraphClassifier: epochs: expected a positive \
integer, got 0
"""

from __future__ import annotations

import contextlib
import random
from numbers import Integral, Real
from typing import Any, Callable, Iterator

import numpy as np
import torch

from taskgraph.errors import ArgumentError
from taskgraph.train.weighting import WEIGHTINGS

__all__ = ["PARAMETERS", "check_parameters", "private_rng", "is_int"]


def is_int(v: Any, low: int) -> bool:
    """An integer (not a bool) ``>= low``."""
    return isinstance(v, Integral) and not isinstance(v, bool) and v >= low


def _real(v: Any, low: float, strict: bool = False) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool) and (v > low if strict else v >= low)


def _widths(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and all(is_int(w, 1) for w in v)


#: parameter -> (accepts, what is expected).
PARAMETERS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "task_dim": (lambda v: v is None or is_int(v, 1), "a positive integer or None"),
    "rounds": (lambda v: v is None or is_int(v, 0), "an integer >= 0 or None"),
    "hidden": (lambda v: v is None or _widths(v), "a list of positive integers or None"),
    "epochs": (lambda v: is_int(v, 1), "a positive integer"),
    "batch_size": (lambda v: is_int(v, 1), "a positive integer"),
    "lr": (lambda v: _real(v, 0, strict=True), "a positive number"),
    "weight_decay": (lambda v: _real(v, 0), "a number >= 0"),
    "weighting": (lambda v: isinstance(v, str) and v in WEIGHTINGS,
                  "one of " + ", ".join(map(repr, WEIGHTINGS))),
    "grad_noise": (lambda v: _real(v, 0), "a number >= 0"),
    "kl_weight": (lambda v: _real(v, 0), "a number >= 0"),
    "samples": (lambda v: is_int(v, 0), "an integer >= 0"),
    "coherent": (lambda v: v is None or isinstance(v, bool), "True, False or None"),
    "random_state": (lambda v: v is None or is_int(v, 0) or isinstance(v, np.random.RandomState),
                     "None, an integer >= 0 or a numpy RandomState"),
    "verbose": (lambda v: isinstance(v, Integral), "a bool"),
}


def check_parameters(estimator: Any, owner: str) -> None:
    """Check every parameter of :data:`PARAMETERS` on ``estimator``.

    Raises:
        ArgumentError: ``{owner}: {name}: expected ..., got ...`` for the first bad one
            (a ``ValueError``, as scikit-learn's parameter checks raise).
    """
    for name, (accepts, expected) in PARAMETERS.items():
        value = getattr(estimator, name)
        if not accepts(value):
            raise ArgumentError(f"{owner}: {name}: expected {expected}, got {value!r}")


@contextlib.contextmanager
def private_rng(seed: int) -> Iterator[None]:
    """Seeded torch, numpy and Python RNGs inside; the caller's global states untouched.

    >>> with private_rng(3):
    ...     a = torch.rand(1)
    >>> with private_rng(3):
    ...     torch.equal(a, torch.rand(1))
    True
    """
    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
