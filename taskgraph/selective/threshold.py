r"""Choosing a selective predictor's threshold on validation rows, with a guarantee.

At a threshold :math:`c` the predictor accepts some rows; its *risk* :math:`R(c)` is the
mean loss of an accepted row (the population quantity, conditional on acceptance). Given
a target :math:`1 - \alpha` (accuracy or precision) and :math:`\delta`, the candidates
:math:`c_1 > c_2 > \dots > c_k` are fixed before the data are seen (``grid``). At each,
the :math:`m(c)` accepted validation rows and their loss sum give an upper confidence
bound :math:`U(c)` at level :math:`\varepsilon` (:mod:`taskgraph.selective.bounds`:
Clopper–Pearson for 0/1 losses, Hoeffding–Bentkus for losses in [0, 1]). Then:

- ``method="bonferroni"``: :math:`\varepsilon = \delta / k`; the choice is the smallest
  :math:`c` with :math:`U(c) \le \alpha` (the most coverage).
- ``method="fixed_sequence"`` (Learn then Test, Angelopoulos et al. 2021):
  :math:`\varepsilon = \delta`; walk down from :math:`c_1` while :math:`U(c) \le \alpha`;
  the choice is the last threshold passed. It needs enough accepted rows at :math:`c_1`.

**Guarantee.** If the validation rows and the rows the predictor will meet are i.i.d.
draws from one distribution, and neither the model nor the grid was fitted or selected
on these validation rows, then with probability at least :math:`1 - \delta` over the
validation draw,

.. math::
    R(\hat c) \le \alpha .

Why: given the number accepted at :math:`c`, the accepted rows are an i.i.d. sample of
the accepted population, so :math:`P(U(c) \le \alpha) \le \varepsilon` for every
:math:`c` with :math:`R(c) > \alpha`. Bonferroni: a wrong choice needs one of at most
:math:`k` such :math:`c` to pass, probability :math:`\le k\varepsilon = \delta`. Fixed
sequence: it needs the first such :math:`c` in the fixed order to pass,
:math:`\le \delta`. (Scanning every threshold at level :math:`\delta` without either
correction would not keep this guarantee.) Nothing is promised about coverage, and when
no candidate passes there is no choice (``threshold`` is ``None``).

Example:
    >>> import numpy as np
    >>> from taskgraph.selective.sweep import Sweep
    >>> rows = Sweep(np.linspace(1, 0.01, 300), accepted=np.ones(300), loss=np.zeros(300),
    ...              size=np.ones(300), n=300)           # 300 rows, all right
    >>> choice = choose_threshold(rows, target=0.95, delta=0.05, grid=[0.9, 0.5, 0.1])
    >>> choice.threshold, choice.accepted, round(choice.bound, 4)
    (0.1, 272, 0.0149)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from taskgraph.errors import ArgumentError
from taskgraph.selective.bounds import clopper_pearson_upper, hoeffding_bentkus_upper
from taskgraph.selective.sweep import Sweep

__all__ = ["ThresholdChoice", "choose_threshold", "check_choice", "threshold_grid", "METHODS"]

#: the ways to correct for trying several thresholds (module docstring)
METHODS = ("bonferroni", "fixed_sequence")


@dataclass(frozen=True, repr=False)
class ThresholdChoice:
    """A threshold chosen on validation rows, and what is guaranteed about it.

    Attributes:
        threshold: the chosen threshold, or ``None`` when no candidate passed.
        target: the target accuracy / precision :math:`1 - \\alpha`.
        delta: the allowed probability :math:`\\delta` that the guarantee fails.
        method: ``"bonferroni"`` or ``"fixed_sequence"``.
        level: :math:`\\varepsilon`, the level of each bound.
        bound_name: ``"Clopper-Pearson"`` or ``"Hoeffding-Bentkus"``.
        risk_name: what the risk is, in words.
        n: validation rows used.
        accepted, coverage, risk, bound: at the chosen threshold (0, 0, NaN and the
            smallest bound of any candidate when there is none).
        candidates: ``(k,)`` the grid, falling; ``bounds``: ``(k,)`` :math:`U(c)` of each.
    """

    threshold: float | None
    target: float
    delta: float
    method: str
    level: float
    bound_name: str
    risk_name: str
    n: int
    accepted: int
    coverage: float
    risk: float
    bound: float
    candidates: np.ndarray
    bounds: np.ndarray

    @property
    def guaranteed(self) -> bool:
        """Whether a threshold met the target."""
        return self.threshold is not None

    @property
    def guarantee(self) -> str:
        """The guarantee in words (or why there is none)."""
        if self.threshold is None:
            return (f"no threshold of the {len(self.candidates)} candidates has a "
                    f"{self.bound_name} bound <= {1 - self.target:g} on the {self.risk_name} "
                    f"(the smallest is {self.bound:.4g}, with {self.n} validation rows)")
        return (f"with probability >= {1 - self.delta:g} over the {self.n} validation rows, "
                f"the {self.risk_name} at threshold {self.threshold:g} is <= "
                f"{1 - self.target:g} ({self.bound_name} bound {self.bound:.4g} at level "
                f"{self.level:.3g}, {self.method.replace('_', ' ')} over "
                f"{len(self.candidates)} thresholds; valid and future rows i.i.d., the "
                "model not fitted or selected on the valid rows)")

    def __str__(self) -> str:
        if self.threshold is None:
            return f"no threshold: {self.guarantee}"
        return (f"threshold {self.threshold:g}: coverage {self.coverage:.3f}, risk "
                f"{self.risk:.4f} on {self.accepted} of {self.n} rows; {self.guarantee}")

    def __repr__(self) -> str:
        return (f"ThresholdChoice(threshold={self.threshold}, target={self.target}, "
                f"delta={self.delta}, method={self.method!r}, n={self.n})")


def _unit(value: Any, name: str, who: str) -> float:
    """``value`` checked: a finite number in (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or not 0 < value < 1:
        raise ArgumentError(f"{who}: {name}: expected a number in (0, 1), got {value!r}")
    return float(value)


def threshold_grid(grid: int | Sequence[float], who: str = "choose_threshold") -> np.ndarray:
    """The candidate thresholds, falling: ``grid`` values ``j / grid`` (``j = grid..1``) for
    an integer, else the given values (each in (0, 1], sorted, duplicates dropped).

    >>> threshold_grid(4).tolist()
    [1.0, 0.75, 0.5, 0.25]
    """
    if isinstance(grid, (int, np.integer)) and not isinstance(grid, bool):
        if grid < 1:
            raise ArgumentError(f"{who}: grid: expected a positive integer or a sequence of "
                                f"thresholds in (0, 1], got {grid!r}")
        return np.arange(int(grid), 0, -1, dtype=np.float64) / int(grid)
    try:
        values = [float(v) for v in grid]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ArgumentError(f"{who}: grid: expected a positive integer or a sequence of "
                            f"thresholds in (0, 1], got {grid!r}") from None
    if not values or any(not (0 < v <= 1) for v in values):
        raise ArgumentError(f"{who}: grid: thresholds must be in (0, 1] (and at least one), "
                            f"got {list(values)!r}")
    return np.array(sorted(set(values), reverse=True))


def check_choice(*, target: float, delta: float, grid: int | Sequence[float], method: str,
                 who: str, target_name: str = "target") -> tuple[float, float, np.ndarray]:
    """``(target, delta, candidates)``, checked (before any prediction is made).

    Raises:
        ArgumentError: a bad ``target`` (named ``target_name``), ``delta``, ``grid`` or
            ``method``.
    """
    target = _unit(target, target_name, who)
    delta = _unit(delta, "delta", who)
    if method not in METHODS:
        raise ArgumentError(f"{who}: method: expected one of {', '.join(map(repr, METHODS))}, "
                            f"got {method!r}")
    return target, delta, threshold_grid(grid, who)


def choose_threshold(sweep: Sweep, *, target: float, delta: float = 0.05,
                     grid: int | Sequence[float] = 100, method: str = "bonferroni",
                     bounded: bool = False, risk_name: str = "risk",
                     who: str = "choose_threshold", target_name: str = "target"
                     ) -> ThresholdChoice:
    """Choose a threshold on the validation rows summed up by ``sweep`` (module docstring).

    Args:
        sweep: the validation rows' :class:`~taskgraph.selective.sweep.Sweep`.
        target: the target :math:`1 - \\alpha` in (0, 1): accuracy, or precision.
        delta: :math:`\\delta` in (0, 1).
        grid: the candidates: a count (``j / grid``) or the thresholds themselves.
        method: ``"bonferroni"`` or ``"fixed_sequence"``.
        bounded: losses in [0, 1] (Hoeffding–Bentkus) instead of 0/1 (Clopper–Pearson).
        risk_name: the risk in words, for :attr:`ThresholdChoice.guarantee`.
        who, target_name: the caller and its name for ``target``, for messages.

    Returns:
        A :class:`ThresholdChoice`.

    Raises:
        ArgumentError: a bad ``target``, ``delta``, ``grid`` or ``method``.
    """
    target, delta, candidates = check_choice(target=target, delta=delta, grid=grid,
                                             method=method, who=who, target_name=target_name)
    alpha = 1.0 - target
    level = delta / len(candidates) if method == "bonferroni" else delta
    accepted, loss, _ = sweep.totals(candidates)  # (k,) each
    if bounded:
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(accepted > 0, loss / np.maximum(accepted, 1), 0.0)
        bounds = hoeffding_bentkus_upper(mean, accepted, level)
    else:
        bounds = clopper_pearson_upper(np.rint(loss), accepted, level)
    passed = bounds <= alpha
    if method == "fixed_sequence":
        failed = np.flatnonzero(~passed)
        passed[failed[0] if len(failed) else len(passed):] = False
    chosen = np.flatnonzero(passed)
    name = "Hoeffding-Bentkus" if bounded else "Clopper-Pearson"
    if not len(chosen):
        return ThresholdChoice(None, target, delta, method, level, name, risk_name, sweep.n,
                               0, 0.0, float("nan"), float(bounds.min()), candidates, bounds)
    j = chosen[-1]  # the smallest passing threshold: the most coverage
    return ThresholdChoice(float(candidates[j]), target, delta, method, level, name,
                           risk_name, sweep.n, int(accepted[j]),
                           float(accepted[j]) / max(sweep.n, 1),
                           float(loss[j] / accepted[j]), float(bounds[j]), candidates, bounds)
