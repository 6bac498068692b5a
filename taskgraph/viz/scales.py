r"""Robust scales for pictures: a range that spreads over the values actually present,
and the robust z-score that says which values differ most from the rest.

A colour or width scale from the minimum to the maximum is dominated by a few extreme
values; :class:`RobustRange` spans the ``low``-th to the ``high``-th percentile
(default 2nd to 98th, ``numpy.percentile`` with linear interpolation) and clips what
lies outside, so the bulk of the values uses the whole scale:

.. math::
    f(x) = \min\Big(1, \max\Big(0, \frac{x - q_{2}}{q_{98} - q_{2}}\Big)\Big)

:func:`robust_z` measures distance from the median in units of the scaled median
absolute deviation (MAD), which a handful of outliers cannot inflate:

.. math::
    z_i = \frac{x_i - \operatorname{med}(x)}{1.4826 \cdot \operatorname{med}|x - \operatorname{med}(x)|}

(1.4826 makes the MAD a consistent estimate of a normal standard deviation). When more
than half of the values are equal the MAD is 0; the mean absolute deviation from the
median times :math:`\sqrt{\pi/2} \approx 1.2533` (the same consistency for a normal)
stands in; when every value is equal, every z is 0.

Example:
    >>> import numpy as np
    >>> r = RobustRange(np.arange(101.0))          # percentiles 2 and 98: 2.0 and 98.0
    >>> r.low, r.high, r.fraction(50.0), r.fraction(-5.0)
    (2.0, 98.0, 0.5, 0.0)
    >>> robust_z(np.array([1.0, 2.0, 3.0, 4.0, 100.0])).round(2).tolist()
    [-1.35, -0.67, 0.0, 0.67, 65.43]
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from taskgraph.errors import ArgumentError

__all__ = ["RobustRange", "robust_z", "distinct_format", "QUANTILES"]

#: The percentiles a :class:`RobustRange` spans by default.
QUANTILES = (2.0, 98.0)
_MAD_NORMAL = 1.4826
_MEAN_AD_NORMAL = math.sqrt(math.pi / 2)


class RobustRange:
    """The ``quantiles`` range of ``values`` and the clipped position of a value in it.

    Args:
        values: the numbers present (non-finite ones are ignored).
        quantiles: ``(low, high)`` percentiles, ``0 <= low < high <= 100``.

    Attributes:
        low, high: the two percentiles of the values (equal when the values are).
        lowest, highest: the smallest and largest value.
        n: how many finite values there were.

    Raises:
        ArgumentError: bad ``quantiles``.
    """

    def __init__(self, values: Iterable[float], quantiles: tuple[float, float] = QUANTILES
                 ) -> None:
        lo_q, hi_q = _check_quantiles(quantiles)
        v = np.asarray(list(values), dtype=np.float64).reshape(-1)
        v = v[np.isfinite(v)]
        self.quantiles = (lo_q, hi_q)
        self.n = int(v.size)
        if v.size == 0:
            v = np.zeros(1)
        self.low, self.high = (float(q) for q in np.percentile(v, [lo_q, hi_q]))
        self.lowest, self.highest = float(v.min()), float(v.max())

    @property
    def span(self) -> float:
        """``high - low``."""
        return self.high - self.low

    @property
    def clipped(self) -> tuple[bool, bool]:
        """Whether values lie below ``low`` / above ``high`` (the scale's ends clip)."""
        return self.lowest < self.low, self.highest > self.high

    def fraction(self, value: float) -> float:
        """Where ``value`` lies in ``[low, high]``, clipped to ``[0, 1]`` (0.5 when the
        range is a single value)."""
        if self.span <= 0:
            return 0.5
        return min(1.0, max(0.0, (float(value) - self.low) / self.span))

    def label(self, digits: int = 3) -> str:
        """``"0.973 – 0.979 (2nd–98th percentile)"``, or the single value."""
        lo, hi = (_ordinal(q) for q in self.quantiles)
        if self.span <= 0:
            return f"all {self.low:.{digits}g}"
        return f"{self.low:.{digits}g} – {self.high:.{digits}g} ({lo}–{hi} percentile)"

    def __repr__(self) -> str:
        return (f"RobustRange(low={self.low:.4g}, high={self.high:.4g}, n={self.n}, "
                f"quantiles={self.quantiles})")


def robust_z(values: Any) -> np.ndarray:
    """Robust z-scores of ``values`` (see the module docstring): ``(n,)`` floats, NaN
    where a value is not finite.

    Example:
        >>> robust_z([5.0, 5.0, 5.0, 6.0]).round(3).tolist()  # MAD 0: mean |x - med| stands in
        [0.0, 0.0, 0.0, 3.192]
        >>> robust_z([2.0, 2.0]).tolist()
        [0.0, 0.0]
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    out = np.full(x.shape, np.nan)
    ok = np.isfinite(x)
    if not ok.any():
        return out
    v = x[ok]
    med = float(np.median(v))
    dev = np.abs(v - med)
    scale = _MAD_NORMAL * float(np.median(dev))
    if scale <= 0:
        scale = _MEAN_AD_NORMAL * float(dev.mean())
    out[ok] = (v - med) / scale if scale > 0 else 0.0
    return out


def _check_quantiles(quantiles: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(q) for q in quantiles)
    except (TypeError, ValueError):
        raise ArgumentError(f"quantiles: expected two percentiles (low, high), got "
                            f"{quantiles!r}") from None
    if not 0.0 <= lo < hi <= 100.0:
        raise ArgumentError(f"quantiles: expected 0 <= low < high <= 100, got {quantiles!r}")
    return lo, hi


def _ordinal(q: float) -> str:
    n = int(q) if float(q).is_integer() else q
    if not isinstance(n, int):
        return f"{n:g}th"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def distinct_format(value: float, among: Iterable[float]) -> str:
    """``value`` with enough digits to show how the values of ``among`` differ: the
    last digit shown is at most a tenth of their smallest gap; at least 3 decimals below
    10 and 1 from 10 to 10,000 (fixed point), else 3 significant digits.

    Example:
        >>> distinct_format(0.97312, [0.97312, 0.97391]), distinct_format(1.0008, [0.967, 1.0008])
        ('0.97312', '1.001')
        >>> distinct_format(0.1043408, [0.1043408, 0.1045182]), distinct_format(2e-5, [2e-5])
        ('0.10434', '2e-05')
    """
    values = sorted({float(v) for v in among} | {float(value)})
    gaps = [b - a for a, b in zip(values, values[1:])]
    biggest = max(map(abs, values))
    if all(v == 0 or 1e-3 <= abs(v) < 1e4 for v in values):
        digits = 3 if biggest < 10 else 1
        if gaps:
            digits = max(digits, math.ceil(-math.log10(0.1 * min(gaps))))
        return f"{value:.{min(digits, 9)}f}"
    digits = 3
    if gaps and biggest > 0:
        digits = max(digits, math.ceil(math.log10(biggest / (0.1 * min(gaps)))))
    return f"{value:.{min(digits, 12)}g}"
