r"""A selective predictor swept over its threshold: totals at any threshold, and the
risk–coverage curve with its area.

A predictor with threshold :math:`c` gives each of :math:`n` rows some *events* (a node of
a class path, a label of a label set), each with a score; an event is active when its
score is at least :math:`c`. Each event changes its row's state by
:math:`(\Delta a, \Delta \ell, \Delta s)`: whether the row becomes accepted, the change of
its loss, and one more unit of size (a level of depth, a label). Sorted by falling score,
cumulative sums give at every threshold

.. math::
    A(c) = \sum_{\text{active}} \Delta a, \quad \Lambda(c) = \sum_{\text{active}} \Delta\ell,
    \quad \mathrm{coverage}(c) = A(c) / n, \quad \mathrm{risk}(c) = \Lambda(c) / A(c),

and the mean size :math:`\sum \Delta s / A(c)` of the accepted predictions. The curve has
one point per distinct score (where the predictor changes), in order of falling
threshold, :math:`c_1 > c_2 > \dots`; its area is

.. math::
    \mathrm{AURC} = \sum_j \mathrm{risk}(c_j)\,\big(\mathrm{coverage}(c_j) -
    \mathrm{coverage}(c_{j-1})\big), \qquad \mathrm{coverage}(c_0) = 0,

each gain of coverage weighed by the risk where it is reached. For a one-level predictor
with distinct scores this is the usual AURC, :math:`\frac1n \sum_{k=1}^n
\mathrm{risk@}k` (Geifman et al. 2019). Scores are compared in float32, as the
predictions that use the thresholds compare them.

**Ties.** Rows whose scores tie are accepted together (no threshold separates them), so
the curve has one point per tie group, and the coverage a group adds is weighed by the
risk at the group's end. :func:`taskgraph.metrics.aurc` ranks by an uncertainty instead
and takes the expectation over the orders of tied rows (each error of a tied run replaced
by the run's mean), which puts points inside a tie group that no threshold reaches. The
two areas are equal when no scores tie; with ties they differ: for errors (right |
wrong, right tied) the threshold curve gives :math:`0 \cdot \frac13 + \frac13 \cdot
\frac23 = \frac29` and the ranking curve :math:`(0 + \frac14 + \frac13) / 3 = \frac7{36}`.
The threshold convention is the one a user can act on: it is the area of the operating
points the selective predictor can be set to.

Example:
    >>> import numpy as np
    >>> s = Sweep(np.array([0.9, 0.8, 0.6]), accepted=np.ones(3), loss=np.array([0., 1, 0]),
    ...           size=np.ones(3), n=4)
    >>> curve = s.curve()
    >>> curve.coverage.tolist(), curve.risk.tolist()
    ([0.25, 0.5, 0.75], [0.0, 0.5, 0.3333333333333333])
    >>> round(curve.aurc, 4)                         # (0 + 0.5 + 1/3) / 4
    0.2083
    >>> [v.tolist() for v in s.totals([0.8])[:2]]     # at c = 0.8: 2 accepted, 1 loss
    [[2.0], [1.0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Sweep", "RiskCoverage"]


@dataclass(frozen=True, repr=False)
class RiskCoverage:
    """A risk–coverage curve (module docstring), one point per threshold, falling.

    Attributes:
        threshold: ``(M,)`` the thresholds, decreasing.
        coverage: ``(M,)`` the fraction of the ``n`` rows accepted.
        risk: ``(M,)`` the mean loss of the accepted rows.
        size: ``(M,)`` the mean size of the accepted predictions: depth in levels (class
            paths), number of evaluated labels (label sets).
        n: the rows.
        precision: ``(M,)`` micro precision of the predicted labels (label sets), else
            ``None``.
    """

    threshold: np.ndarray
    coverage: np.ndarray
    risk: np.ndarray
    size: np.ndarray
    n: int
    precision: np.ndarray | None = None

    @property
    def aurc(self) -> float:
        """The area under the curve (module docstring); NaN for an empty curve."""
        if not len(self.coverage):
            return float("nan")
        gain = np.diff(self.coverage, prepend=0.0)
        return float(np.sum(np.where(gain > 0, self.risk * gain, 0.0)))

    def __repr__(self) -> str:
        return f"RiskCoverage({len(self.threshold)} points, n={self.n}, aurc={self.aurc:.4f})"


class Sweep:
    """Cumulative totals of a thresholded predictor (module docstring).

    Args:
        score: ``(E,)`` each event's score; active when ``score >= c`` (in float32).
        accepted: ``(E,)`` 1 where the event makes its row accepted, else 0.
        loss: ``(E,)`` the change of its row's loss.
        size: ``(E,)`` the change of its row's size.
        n: the number of rows (the coverage's denominator).
        false: ``(E,)`` false positives, for a micro precision (label sets), or ``None``.
    """

    def __init__(self, score: Any, *, accepted: Any, loss: Any, size: Any, n: int,
                 false: Any = None) -> None:
        score = np.asarray(score, dtype=np.float32).reshape(-1)
        order = np.argsort(-score, kind="stable")
        self.score = score[order]  # (E,) falling

        def cum(values: Any) -> np.ndarray:  # (E + 1,), 0 before the first event
            return np.concatenate([[0.0], np.cumsum(np.asarray(values, np.float64)[order])])

        self.accepted, self.loss, self.size = cum(accepted), cum(loss), cum(size)
        self.false = cum(false) if false is not None else None
        self.n = int(n)

    def _active(self, thresholds: Any) -> np.ndarray:
        """The number of events with ``score >= c`` for each ``c``."""
        c = np.asarray(thresholds, dtype=np.float32)
        return np.searchsorted(-self.score, -c, side="right")

    def totals(self, thresholds: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(accepted rows, loss sum, size sum)`` at each threshold, each ``(k,)``."""
        k = self._active(thresholds)
        return self.accepted[k], self.loss[k], self.size[k]

    def curve(self) -> RiskCoverage:
        """The points at every distinct score, thresholds falling."""
        if not len(self.score):
            empty = np.zeros(0)
            return RiskCoverage(empty, empty, empty, empty, self.n,
                                empty if self.false is not None else None)
        last = np.flatnonzero(np.r_[self.score[1:] != self.score[:-1], True])  # tie ends
        k = last + 1
        acc = self.accepted[k]
        with np.errstate(divide="ignore", invalid="ignore"):
            risk = np.where(acc > 0, self.loss[k] / acc, np.nan)
            size = np.where(acc > 0, self.size[k] / acc, np.nan)
            precision = None
            if self.false is not None:
                precision = np.where(self.size[k] > 0, 1.0 - self.false[k] / self.size[k],
                                     np.nan)
        return RiskCoverage(self.score[last].astype(np.float64), acc / max(self.n, 1), risk,
                            size, self.n, precision)
