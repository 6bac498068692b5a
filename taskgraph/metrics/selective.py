r"""Selective prediction: the risk–coverage curve, its area (AURC) and how well an
uncertainty score detects errors.

A model that may abstain answers the examples it is most certain about first. Sort the
:math:`n` examples by increasing uncertainty :math:`u`; with :math:`e_{(1)}, \dots,
e_{(n)}` their errors (0 right, 1 wrong) in that order, the risk at coverage
:math:`k/n` is the error rate of the :math:`k` most certain examples and the area under
the risk–coverage curve is its mean over :math:`k` (Geifman & El-Yaniv, 2017; Geifman
et al., 2019):

.. math::
    \mathrm{risk}(k/n) = \frac1k \sum_{i=1}^{k} e_{(i)}, \qquad
    \mathrm{AURC} = \frac1n \sum_{k=1}^{n} \mathrm{risk}(k/n).

**Ties.** Examples with equal uncertainty cannot be ordered by it, so no order among
them is taken: each error inside a run of tied uncertainties is replaced by the run's
mean error. The curve is then the expectation over all orders of the tied examples, and
it does not depend on the order of the examples in the input (a constant uncertainty
gives a flat curve at the overall error rate). :mod:`taskgraph.selective`'s threshold
curves instead keep one point per tie group (the operating points a threshold can
reach), so their area differs from this one where scores tie and equals it where none
do (see :mod:`taskgraph.selective.sweep`). Lower AURC is better; a perfect ranking
reaches :math:`\frac1n \sum_k \max(0, k - n_c)/k` for :math:`n_c` right answers.

The **error-detection AUROC** of an uncertainty score is
``sklearn.metrics.roc_auc_score(errors, uncertainty)``: the probability that a wrong
example is more uncertain than a right one, ties counting one half. It is undefined
(``None``) when all examples are right or all are wrong.

What counts as an error is the caller's choice; :func:`taskgraph.evaluate` uses
``1[(p >= threshold) != y]`` for binary and multilabel labels and ``1[argmax_k p_k != y]``
for multiclass tasks.

Example:
    >>> import numpy as np
    >>> errors = np.array([0, 1, 0, 1])
    >>> uncertainty = np.array([0.1, 0.2, 0.3, 0.4])
    >>> coverage, risk = risk_coverage(errors, uncertainty)
    >>> coverage.tolist(), risk.tolist()
    ([0.25, 0.5, 0.75, 1.0], [0.0, 0.5, 0.3333333333333333, 0.5])
    >>> round(aurc(errors, uncertainty), 4)   # (0 + 1/2 + 1/3 + 1/2) / 4
    0.3333
    >>> error_detection_auroc(errors, uncertainty)   # 3 of the 4 (wrong, right) pairs
    0.75
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from taskgraph.errors import DataError

__all__ = ["risk_coverage", "aurc", "error_detection_auroc", "risk_columns", "aurc_columns",
           "error_auroc_columns", "TiedRuns", "column_blocks"]

#: elements of one ``(N, chunk)`` block of the column functions (memory bound)
_BLOCK = 1 << 21


def _check(errors: Any, uncertainty: Any, who: str) -> tuple[np.ndarray, np.ndarray]:
    """``(N,)`` float errors in {0, 1} and finite uncertainties, or a :class:`DataError`."""
    e = np.asarray(errors, dtype=np.float64).reshape(-1)
    u = np.asarray(uncertainty, dtype=np.float64).reshape(-1)
    if e.shape != u.shape:
        raise DataError(f"{who}: errors and uncertainty must have the same length, got "
                        f"{e.shape[0]} and {u.shape[0]}")
    if e.shape[0] == 0:
        raise DataError(f"{who}: no examples")
    bad = ~np.isin(e, (0.0, 1.0))
    if bad.any():
        raise DataError(f"{who}: errors must be 0 (right) or 1 (wrong), got {e[bad][0]:g} "
                        f"at position {int(np.flatnonzero(bad)[0])}")
    if not np.isfinite(u).all():
        raise DataError(f"{who}: uncertainty must be finite, got {u[~np.isfinite(u)][0]:g} at "
                        f"position {int(np.flatnonzero(~np.isfinite(u))[0])}")
    return e, u


def column_blocks(C: int, N: int) -> list[np.ndarray]:
    """Column chunks of at most :data:`_BLOCK` elements of an ``(N, C)`` array."""
    step = max(1, _BLOCK // max(N, 1))
    return np.array_split(np.arange(C), max(1, -(-C // step))) if C else []


class TiedRuns:
    """The columns of an ``(N, c)`` block sorted by an increasing ``key``, known entries
    first, and cut into runs of tied keys; one row per column, flat underneath. The
    building block of the tie-averaged measures here and of the equal-mass ECE.

    Attributes:
        v, k: ``(c, N)`` the sorted ``values`` (0 where unknown) and known mask.
        starts, lengths, col: the runs' first flat positions, lengths and columns.
        n: ``(c,)`` known entries per column.

    Example:
        >>> runs = TiedRuns(np.array([[.5], [.1], [.5]]), np.ones((3, 1), bool),
        ...                 np.array([[1.], [0.], [0.]]))
        >>> runs.averaged().tolist()   # sorted .1 | .5 .5: the tied pair shares its 1
        [[0.0, 0.5, 0.5]]
    """

    def __init__(self, key: np.ndarray, known: np.ndarray, values: np.ndarray) -> None:
        c, N = known.shape[1], known.shape[0]
        key = np.ascontiguousarray(np.where(known, key, np.inf).T)  # (c, N)
        order = np.argsort(key, axis=1)  # the order inside a run of ties never counts
        s = np.take_along_axis(key, order, 1).reshape(-1)
        self.v = np.take_along_axis(np.ascontiguousarray(np.where(known, values, 0.0).T),
                                    order, 1)
        self.n = known.sum(0)
        self.k = np.arange(N) < self.n[:, None]  # known entries sort first
        kf = self.k.reshape(-1)
        first = np.ones(c * N, dtype=bool)
        first[1:] = (s[1:] != s[:-1]) | (kf[1:] != kf[:-1])  # a run of ties starts
        first[::N] = True  # and so does every column
        self.starts = np.flatnonzero(first)
        self.lengths = np.diff(np.append(self.starts, c * N))
        self.col = self.starts // N
        self.shape = (c, N)

    def run_sums(self, values: np.ndarray) -> np.ndarray:
        """``(runs,)`` sums over each run of ``(c, N)`` sorted ``values``."""
        return np.add.reduceat(values.reshape(-1), self.starts)

    def averaged(self) -> np.ndarray:
        """``(c, N)``: the sorted values, each replaced by the mean of its run."""
        return np.repeat(self.run_sums(self.v) / self.lengths, self.lengths).reshape(self.shape)

    def risk(self) -> np.ndarray:
        """``(c, N)``: values as errors, the tie-averaged risk at coverage ``k / n`` in
        entry ``k - 1`` (NaN for ``k > n``)."""
        N = self.shape[1]
        risk = np.cumsum(self.averaged(), 1) / np.arange(1.0, N + 1)
        return np.where(np.arange(N) < self.n[:, None], risk, np.nan)

    def auroc(self) -> np.ndarray:
        """``(c,)``: values as errors, each wrong entry beats the right ones in lower runs
        and half of those in its own run; NaN without both kinds."""
        c, _ = self.shape
        wrong = self.run_sums(self.v)
        right = np.where(self.k.reshape(-1)[self.starts], self.lengths, 0) - wrong
        before = np.cumsum(right) - right  # right entries in earlier runs ...
        first_run = np.searchsorted(self.starts, np.arange(c) * self.shape[1])
        below = before - before[first_run][self.col]  # ... of the same column
        beaten = np.bincount(self.col, weights=wrong * (below + 0.5 * right), minlength=c)
        pairs = (np.bincount(self.col, weights=wrong, minlength=c)
                 * np.bincount(self.col, weights=right, minlength=c))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(pairs > 0, beaten / pairs, np.nan)


def _columns(errors: Any, uncertainty: Any, known: Any, what: tuple[str, ...]
             ) -> dict[str, np.ndarray]:
    errors, uncertainty = np.asarray(errors), np.asarray(uncertainty, dtype=np.float64)
    known = np.asarray(known, dtype=bool)
    N, C = known.shape
    out = {"risk": np.full((N, C), np.nan)} if "risk" in what else {}
    out.update({name: np.full(C, np.nan) for name in what if name != "risk"})
    for cols in column_blocks(C, N) if N else []:
        runs = TiedRuns(uncertainty[:, cols], known[:, cols],
                        errors[:, cols].astype(np.float64))
        if "risk" in what or "aurc" in what:
            risk = runs.risk()  # (c, N)
            if "risk" in what:
                out["risk"][:, cols] = risk.T
            if "aurc" in what:
                with np.errstate(invalid="ignore", divide="ignore"):
                    out["aurc"][cols] = np.where(runs.n > 0, np.nansum(risk, 1) / runs.n,
                                                 np.nan)
        if "auroc" in what:
            out["auroc"][cols] = runs.auroc()
    return out


def risk_columns(errors: np.ndarray, uncertainty: np.ndarray,
                 known: np.ndarray) -> np.ndarray:
    """Risk–coverage curves of many columns at once (see the module docstring).

    Args:
        errors: ``(N, C)`` 0/1 errors (any value where not ``known``).
        uncertainty: ``(N, C)`` uncertainty scores.
        known: ``(N, C)`` boolean mask of the entries that count.

    Returns:
        ``(N, C)`` float array: row ``k - 1`` of column ``c`` is its risk at coverage
        ``k / n_c`` (``n_c`` its known entries); NaN for ``k > n_c``.

    Example:
        >>> e = np.array([[1., 0.], [0., 1.], [1., 0.]])
        >>> u = np.array([[.3, .5], [.2, .5], [.1, .9]])
        >>> risk_columns(e, u, np.array([[True, True], [True, True], [True, False]])).tolist()
        [[1.0, 0.5], [0.5, 0.5], [0.6666666666666666, nan]]
    """
    return _columns(errors, uncertainty, known, ("risk",))["risk"]


def aurc_columns(errors: np.ndarray, uncertainty: np.ndarray, known: np.ndarray, *,
                 auroc: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """AURC of every column over its known entries: ``(C,)``, NaN where none is known.

    Per column this equals :func:`aurc` of its known entries; the columns are sorted
    together, in blocks (a 4,000-label hierarchy needs no call per label).

    Args:
        errors, uncertainty, known: ``(N, C)`` as for :func:`risk_columns`.
        auroc: also return :func:`error_auroc_columns` (from the same sort).

    Returns:
        ``aurc``, or ``(aurc, error_auroc)`` with ``auroc=True``.

    Example:
        >>> e = np.array([[0., 1.], [1., 1.]]); u = np.array([[.1, .4], [.2, .4]])
        >>> aurc_columns(e, u, np.ones((2, 2), dtype=bool)).tolist()   # (0 + 1/2) / 2, 1
        [0.25, 1.0]
    """
    out = _columns(errors, uncertainty, known, ("aurc", "auroc") if auroc else ("aurc",))
    return (out["aurc"], out["auroc"]) if auroc else out["aurc"]


def error_auroc_columns(errors: np.ndarray, uncertainty: np.ndarray,
                        known: np.ndarray) -> np.ndarray:
    """Error-detection AUROC of every column over its known entries: ``(C,)``, NaN where
    the known entries are all right or all wrong. Per column it equals
    :func:`error_detection_auroc` (a wrong entry beats each right one less uncertain
    than it and half of those tied with it).

    Example:
        >>> e = np.array([[1, 0], [0, 0], [0, 1]]); u = np.array([[.9, .1], [.5, .2], [.5, .3]])
        >>> error_auroc_columns(e, u, np.ones((3, 2), dtype=bool)).tolist()
        [1.0, 1.0]
    """
    return _columns(errors, uncertainty, known, ("auroc",))["auroc"]


def risk_coverage(errors: Any, uncertainty: Any) -> tuple[np.ndarray, np.ndarray]:
    """The risk–coverage curve: ``(coverage, risk)``, two ``(n,)`` arrays with
    ``coverage[k - 1] = k / n`` and ``risk[k - 1]`` the mean error of the ``k`` most
    certain examples, tied uncertainties averaged (see the module docstring).

    Args:
        errors: ``(n,)`` 0 (right) / 1 (wrong) per example.
        uncertainty: ``(n,)`` finite uncertainty scores, higher = less certain.

    Returns:
        ``(coverage, risk)``.

    Raises:
        DataError: no examples, different lengths, an error outside {0, 1} or a
            non-finite uncertainty.

    Example:
        >>> coverage, risk = risk_coverage([1, 0, 0], [0.5, 0.5, 0.1])  # .5 tied: 1/2 each
        >>> coverage.round(3).tolist(), risk.tolist()
        ([0.333, 0.667, 1.0], [0.0, 0.25, 0.3333333333333333])
    """
    e, u = _check(errors, uncertainty, "risk_coverage")
    n = e.shape[0]
    risk = risk_columns(e[:, None], u[:, None], np.ones((n, 1), dtype=bool))
    return np.arange(1, n + 1) / n, risk[:, 0]


def aurc(errors: Any, uncertainty: Any) -> float:
    """Area under the risk–coverage curve: the mean of :func:`risk_coverage`'s risk.

    Args:
        errors: ``(n,)`` 0 (right) / 1 (wrong) per example.
        uncertainty: ``(n,)`` finite uncertainty scores, higher = less certain.

    Returns:
        The AURC, in ``[0, 1]`` (lower is better).

    Raises:
        DataError: as :func:`risk_coverage`.

    Example:
        >>> aurc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])   # errors last: (0 + 0 + 1/3 + 1/2) / 4
        0.20833333333333331
        >>> aurc([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3])   # no ranking: the error rate
        0.5
    """
    return float(risk_coverage(errors, uncertainty)[1].mean())


def error_detection_auroc(errors: Any, uncertainty: Any) -> float | None:
    """How well ``uncertainty`` separates wrong from right examples:
    ``sklearn.metrics.roc_auc_score(errors, uncertainty)``.

    Args:
        errors: ``(n,)`` 0 (right) / 1 (wrong) per example.
        uncertainty: ``(n,)`` finite uncertainty scores, higher = less certain.

    Returns:
        The AUROC in ``[0, 1]`` (0.5: no better than chance), or ``None`` when all
        examples are right or all are wrong.

    Raises:
        DataError: as :func:`risk_coverage`.

    Example:
        >>> error_detection_auroc([1, 0, 0], [0.9, 0.1, 0.9])   # (1 + 0.5) / 2
        0.75
        >>> error_detection_auroc([0, 0], [0.1, 0.2]) is None
        True
    """
    e, u = _check(errors, uncertainty, "error_detection_auroc")
    if e.min() == e.max():
        return None
    return float(roc_auc_score(e, u))
