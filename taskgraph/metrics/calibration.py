r"""Calibration: expected calibration error, log loss and Brier score of probabilities.

The expected calibration error (ECE) with :math:`M` equal-width bins
:math:`B_m = [\tfrac{m-1}{M}, \tfrac{m}{M})` (the last bin closed at 1) is

.. math::
    \mathrm{ECE} = \sum_{m=1}^{M} \frac{|B_m|}{N}\,
    \Big|\,\mathrm{acc}(B_m) - \mathrm{conf}(B_m)\Big|
    = \frac1N \sum_{m=1}^{M} \Big|\sum_{i \in B_m} (o_i - c_i)\Big|

where, for a **binary** event, :math:`c_i` is the predicted probability of the positive
class and :math:`o_i \in \{0, 1\}` the outcome (Naeini et al., 2015); for a
**multiclass** prediction, :math:`c_i = \max_k p_{ik}` is the top-label confidence and
:math:`o_i = [\arg\max_k p_{ik} = y_i]` whether the top label is right (Guo et al., 2017).
Empty bins contribute nothing. scikit-learn has no ECE; log loss and the binary Brier
score are :func:`sklearn.metrics.log_loss` and :func:`sklearn.metrics.brier_score_loss`.

**Equal-mass (adaptive) bins** (``binning="equal_mass"``, Nixon et al., 2019): the
examples sorted by confidence :math:`c_i` are split into :math:`M` bins of as near equal
counts as possible, as ``np.array_split`` splits them (the first :math:`N \bmod M` bins
hold :math:`\lfloor N/M \rfloor + 1` examples, the others :math:`\lfloor N/M \rfloor`),
and the same sum runs over these bins. Tied confidences have no order: a bin that takes
:math:`m` of a run of :math:`r` tied examples takes :math:`m/r` of the run's total
:math:`\sum (o_i - c_i)` (each bin's sum is its expectation over the orders of the
ties), so the result does not depend on the order of the input. With fewer examples
than bins, the extra bins are empty. Equal-width bins leave most bins empty when
confidences crowd near 0 or 1 (rare labels); equal-mass bins always compare groups of
:math:`\approx N/M` examples.

Example:
    >>> import numpy as np
    >>> y = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    >>> p = np.array([.25, .25, .25, .25, .75, .75, .75, .75])
    >>> round(expected_calibration_error(y, p), 6)   # each bin's rate equals its p
    0.0
    >>> round(expected_calibration_error(y, np.full(8, 0.9)), 6)  # 4/8 positives at 0.9
    0.4
    >>> p = np.array([.1, .2, .3, .4, .6, .7, .8, .9])
    >>> # 2 bins of 4: |0 - .25| and |1 - .75|, each weighed 4/8
    >>> round(expected_calibration_error(np.array([0, 0, 0, 0, 1, 1, 1, 1]), p, n_bins=2,
    ...                                  binning="equal_mass"), 6)
    0.25
"""

from __future__ import annotations

from typing import Any

import numpy as np

from taskgraph.errors import ArgumentError, DataError
from taskgraph.metrics.selective import TiedRuns, column_blocks

__all__ = ["expected_calibration_error", "multiclass_brier_score", "binary_calibration_columns",
           "equal_mass_ece_columns", "calibration_bins", "DEFAULT_BINS", "BINNINGS"]

DEFAULT_BINS = 15

#: The bin layouts of :func:`expected_calibration_error`.
BINNINGS = ("equal_width", "equal_mass")


def _check_bins(n_bins: Any) -> int:
    if not isinstance(n_bins, (int, np.integer)) or isinstance(n_bins, bool) or n_bins < 1:
        raise ArgumentError(f"n_bins: expected a positive integer, got {n_bins!r}")
    return int(n_bins)


def _check_binning(binning: Any) -> str:
    if binning not in BINNINGS:
        raise ArgumentError(f"binning: expected one of {', '.join(map(repr, BINNINGS))}, got "
                            f"{binning!r}")
    return binning


def _equal_mass_bounds(n: np.ndarray, n_bins: int) -> np.ndarray:
    """``(c, n_bins + 1)`` bin boundaries (ranks) of ``(c,)`` counts ``n`` split as
    ``np.array_split`` splits them: the first ``n % n_bins`` bins hold ``n // n_bins + 1``
    items, the others ``n // n_bins``.

    >>> _equal_mass_bounds(np.array([7, 2]), 3).tolist()   # sizes 3, 2, 2 and 1, 1, 0
    [[0, 3, 5, 7], [0, 1, 2, 2]]
    """
    q, rem = np.divmod(n[:, None], n_bins)
    b = np.arange(n_bins + 1)
    return b * q + np.minimum(b, rem)


def equal_mass_ece_columns(outcome: np.ndarray, conf: np.ndarray, known: np.ndarray, *,
                           n_bins: int = DEFAULT_BINS) -> np.ndarray:
    """ECE with equal-mass bins of every column of ``(N, C)`` outcomes / confidences over
    its ``known`` rows (the module docstring): per column equal to
    ``expected_calibration_error(..., binning="equal_mass")``, all columns sorted together.

    Args:
        outcome: ``(N, C)`` 0/1 outcomes (any value where not ``known``).
        conf: ``(N, C)`` confidences in ``[0, 1]``.
        known: ``(N, C)`` boolean mask of the entries that count.
        n_bins: bins per column.

    Returns:
        ``(C,)`` float array, NaN for a column without known rows.

    Example:
        >>> o = np.array([[0., 1.], [1., 1.], [1., 0.]])
        >>> c = np.array([[.2, .9], [.6, .9], [.8, .5]])
        >>> # bins of 2 and 1 by confidence: (|-.2 + .4| + .2) / 3 and (|-.5 + .1| + .1) / 3
        >>> ece = equal_mass_ece_columns(o, c, np.ones((3, 2), dtype=bool), n_bins=2)
        >>> np.round(ece, 4).tolist()
        [0.1333, 0.1667]
    """
    n_bins = _check_bins(n_bins)
    known = np.asarray(known, dtype=bool)
    conf = np.asarray(conf, dtype=np.float64)
    N, C = known.shape
    out = np.full(C, np.nan)
    for cols in column_blocks(C, N) if N else []:
        gap = np.asarray(outcome[:, cols], dtype=np.float64) - conf[:, cols]  # o - c
        runs = TiedRuns(conf[:, cols], known[:, cols], gap)
        total = np.zeros((len(cols), N + 1))
        np.cumsum(runs.averaged(), 1, out=total[:, 1:])  # (c, N + 1), ties averaged
        bounds = _equal_mass_bounds(runs.n, n_bins)  # (c, n_bins + 1)
        per_bin = np.diff(np.take_along_axis(total, bounds, 1), axis=1)  # (c, n_bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[cols] = np.where(runs.n > 0, np.abs(per_bin).sum(1) / runs.n, np.nan)
    return out


def _bin_sums(outcome: np.ndarray, conf: np.ndarray, known: np.ndarray,
              n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column and bin of ``(N, C)`` outcomes / confidences, over the ``known`` rows:
    the count, the sum of confidences and the sum of outcomes, each ``(C, n_bins)``.

    The binning of every calibration number here: bin m holds ``[m/M, (m+1)/M)``, the
    last one closed at 1, so a confidence of exactly ``m/M`` falls in bin m.
    """
    C = conf.shape[1]
    inner = np.arange(1, n_bins) / n_bins
    conf = np.clip(conf, 0.0, 1.0)
    bins = np.searchsorted(inner, conf, side="right")  # (N, C)
    slot = (bins + n_bins * np.arange(C)[None, :])[known]  # one slot per (column, bin)

    def total(weights: np.ndarray | None) -> np.ndarray:
        return np.bincount(slot, weights=weights, minlength=C * n_bins).reshape(C, n_bins)
    return total(None), total(conf[known]), total(outcome[known])


def _ece_columns(outcome: np.ndarray, conf: np.ndarray, known: np.ndarray,
                 n_bins: int) -> np.ndarray:
    """ECE of every column of ``(N, C)`` outcomes / confidences over its ``known`` rows.

    Returns a ``(C,)`` float array, NaN for a column without known rows.
    """
    count, conf_sum, outcome_sum = _bin_sums(outcome, conf, known, n_bins)
    n = count.sum(1)  # (C,)
    total = np.abs(outcome_sum - conf_sum).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def calibration_bins(outcome: Any, confidence: Any, n_bins: int = DEFAULT_BINS
                     ) -> dict[str, Any]:
    """Per bin: ``count``, mean ``confidence`` and ``accuracy`` (NaN where empty), the
    bin ``edges``, and the ``ece`` (what reliability diagrams draw).

    Args:
        outcome: ``(N,)`` 0/1 outcomes (a binary label, or top-label correctness).
        confidence: ``(N,)`` predicted probabilities of those outcomes.
        n_bins: equal-width bins on ``[0, 1]``.

    Example:
        >>> b = calibration_bins(np.array([1., 0., 1., 1.]), np.array([.9, .9, .2, .2]), 5)
        >>> b["count"].tolist(), float(b["accuracy"][4]), round(b["ece"], 3)  # (.8 + 1.6) / 4
        ([0, 2, 0, 0, 2], 0.5, 0.6)
    """
    n_bins = _check_bins(n_bins)
    o = np.asarray(outcome, dtype=np.float64).reshape(-1, 1)
    c = np.asarray(confidence, dtype=np.float64).reshape(-1, 1)
    count, conf_sum, acc_sum = (a[0] for a in _bin_sums(o, c, np.ones_like(c, dtype=bool),
                                                         n_bins))
    with np.errstate(invalid="ignore", divide="ignore"):
        conf, acc = conf_sum / count, acc_sum / count
    ece = float(np.abs(acc_sum - conf_sum).sum() / max(o.shape[0], 1))
    return {"count": count.astype(np.int64), "confidence": conf, "accuracy": acc, "ece": ece,
            "edges": np.linspace(0.0, 1.0, n_bins + 1)}


def expected_calibration_error(y_true: Any, y_prob: Any, *, n_bins: int = DEFAULT_BINS,
                               binning: str = "equal_width") -> float:
    """Expected calibration error with ``n_bins`` equal-width or equal-mass bins (see the
    module docstring).

    Args:
        y_true: ``(N,)`` outcomes: 0/1 for a binary event, class indices for multiclass.
        y_prob: ``(N,)`` probabilities of the positive class (binary), or ``(N, K)`` class
            probabilities (multiclass: top-label confidence against top-label accuracy).
        n_bins: number of bins (default 15).
        binning: ``"equal_width"``: bins of width ``1 / n_bins`` on ``[0, 1]``;
            ``"equal_mass"``: bins of equal counts of the examples sorted by confidence.

    Returns:
        The ECE, in ``[0, 1]``.

    Raises:
        DataError: no examples, mismatched lengths, or a 0/1 outcome outside ``{0, 1}``.
        ArgumentError: a bad ``n_bins`` or ``binning``.

    Example:
        >>> import numpy as np
        >>> probs = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
        >>> # top labels 0, 0, 1 (right, wrong, right); confidences .8 | .6, .7
        >>> round(expected_calibration_error([0, 1, 1], probs, n_bins=5), 4)
        0.1667
        >>> # equal mass, 2 bins: {.6 wrong, .7 right} | {.8 right}: (|-.6 + .3| + .2) / 3
        >>> round(expected_calibration_error([0, 1, 1], probs, n_bins=2,
        ...                                  binning="equal_mass"), 4)
        0.1667
    """
    n_bins = _check_bins(n_bins)
    binning = _check_binning(binning)
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_prob, dtype=np.float64)
    if p.ndim not in (1, 2) or p.shape[0] != y.shape[0]:
        raise DataError(f"expected_calibration_error: y_prob must be (N,) or (N, K) with "
                        f"N = len(y_true) = {y.shape[0]}, got shape {p.shape}")
    if y.shape[0] == 0:
        raise DataError("expected_calibration_error: no examples")
    if p.ndim == 2 and p.shape[1] > 1:
        outcome = (p.argmax(1) == y).astype(np.float64)
        conf = p.max(1)
    else:
        if not np.isin(y, (0.0, 1.0)).all():
            raise DataError("expected_calibration_error: binary outcomes must be 0 or 1, got "
                            f"{y[~np.isin(y, (0.0, 1.0))][0]:g}")
        outcome, conf = y, p.reshape(-1)
    known = np.ones((y.shape[0], 1), dtype=bool)
    if binning == "equal_mass":
        return float(equal_mass_ece_columns(outcome[:, None], conf[:, None], known,
                                            n_bins=n_bins)[0])
    return float(_ece_columns(outcome[:, None], conf[:, None], known, n_bins)[0])


def multiclass_brier_score(y_true: Any, y_prob: Any) -> float:
    r"""Brier's original multiclass score, :math:`\frac1N \sum_i \sum_k (p_{ik} - [y_i = k])^2`.

    It lies in ``[0, 2]``; for two classes it is twice the binary Brier score.

    Args:
        y_true: ``(N,)`` class indices in ``0..K-1``.
        y_prob: ``(N, K)`` class probabilities.

    Returns:
        The mean squared distance between the probabilities and the one-hot label.

    Raises:
        DataError: mismatched shapes or a class index outside ``0..K-1``.

    Example:
        >>> round(multiclass_brier_score([0, 2], [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]), 4)
        0.25
    """
    y = np.asarray(y_true).reshape(-1)
    p = np.asarray(y_prob, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != y.shape[0] or y.shape[0] == 0:
        raise DataError(f"multiclass_brier_score: expected y_prob of shape ({y.shape[0]}, K), "
                        f"got {p.shape}")
    if ((y < 0) | (y >= p.shape[1]) | (y != np.round(y))).any():
        raise DataError(f"multiclass_brier_score: class indices must be in 0..{p.shape[1] - 1}")
    onehot = np.eye(p.shape[1])[y.astype(np.int64)]
    return float(((p - onehot) ** 2).sum(1).mean())


def binary_calibration_columns(y: np.ndarray, p: np.ndarray, known: np.ndarray, *,
                               n_bins: int = DEFAULT_BINS) -> dict[str, np.ndarray]:
    """ECE, log loss and Brier score of many binary columns at once, over known entries.

    Per column these equal :func:`expected_calibration_error`,
    ``sklearn.metrics.log_loss(y, p, labels=[0, 1])`` (probabilities clipped to
    ``[eps, 1 - eps]`` as scikit-learn does) and ``sklearn.metrics.brier_score_loss(y, p)``
    on the column's known rows; one pass over the ``(N, C)`` arrays instead of ``C``
    calls (a 4,000-label hierarchy would spend seconds in per-call input checks).

    Args:
        y: ``(N, C)`` 0/1 outcomes (any value where not ``known``).
        p: ``(N, C)`` probabilities of the positive class.
        known: ``(N, C)`` boolean mask of labelled entries.
        n_bins: ECE bins.

    Returns:
        ``{"ece", "nll", "brier"}``: ``(C,)`` float arrays, NaN where a column has no
        known entry.

    Example:
        >>> import numpy as np
        >>> y = np.array([[1., 0.], [0., 0.]]); p = np.array([[.8, .1], [.4, .3]])
        >>> out = binary_calibration_columns(y, p, np.array([[True, True], [True, False]]))
        >>> np.round(out["brier"], 3).tolist()
        [0.1, 0.01]
    """
    n_bins = _check_bins(n_bins)
    y = np.where(known, y, 0.0).astype(np.float64)
    p = np.asarray(p, dtype=np.float64)
    count = known.sum(0)
    eps = np.finfo(np.float64).eps
    pc = np.clip(p, eps, 1 - eps)
    with np.errstate(invalid="ignore", divide="ignore"):
        nll = -np.where(known, y * np.log(pc) + (1 - y) * np.log1p(-pc), 0.0).sum(0) / count
        brier = np.where(known, (p - y) ** 2, 0.0).sum(0) / count
    ece = _ece_columns(y, p, known, n_bins)
    empty = count == 0
    nll[empty] = np.nan
    brier[empty] = np.nan
    return {"ece": ece, "nll": nll, "brier": brier}
