r"""Upper confidence bounds on a risk: Clopper–Pearson (0/1 losses) and Hoeffding–Bentkus
(losses in [0, 1]).

Both bound the mean loss :math:`R` of :math:`m` i.i.d. losses from their sum :math:`S`:
``P(R <= bound) >= 1 - level``. With no loss at all (:math:`m = 0`) the bound is 1.

**Clopper–Pearson** (exact, for :math:`L_i \in \{0, 1\}`, :math:`S` errors):

.. math::
    U_{CP} = \mathrm{Beta}^{-1}(1 - \varepsilon;\; S + 1,\; m - S) \quad (S < m),
    \qquad U_{CP} = 1 \quad (S = m),

equivalently the largest :math:`a` with :math:`P(\mathrm{Bin}(m, a) \le S) \ge \varepsilon`.

**Hoeffding–Bentkus** (Bates et al. 2021, "Distribution-free, risk-controlling prediction
sets"; for :math:`L_i \in [0, 1]`, :math:`\hat R = S / m`): the smallest :math:`a` with

.. math::
    p(a) = \min\Big(e^{-m\, h(\min(\hat R, a),\, a)},\;
    e \cdot P\big(\mathrm{Bin}(m, a) \le \lceil m \hat R \rceil\big)\Big) \le \varepsilon,
    \qquad h(q, a) = q \log\tfrac{q}{a} + (1 - q) \log\tfrac{1 - q}{1 - a},

found by bisection (``p`` falls as ``a`` grows). The factor ``e`` is Bentkus's price for
losses that are not 0/1; for 0/1 losses use Clopper–Pearson, which is tighter.

Example:
    >>> round(float(clopper_pearson_upper(0, 59, 0.05)), 4)   # 59 right of 59: risk <= 5 %
    0.0495
    >>> float(clopper_pearson_upper(0, 0, 0.05))
    1.0
    >>> float(hoeffding_bentkus_upper(0.1, 100, 0.05)) > float(clopper_pearson_upper(10, 100, 0.05))
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["clopper_pearson_upper", "hoeffding_bentkus_upper"]


def clopper_pearson_upper(errors: Any, n: Any, level: float) -> np.ndarray:
    """The one-sided Clopper–Pearson upper bound on an error rate (module docstring).

    Args:
        errors: error counts :math:`S` (integers; scalar or array).
        n: trial counts :math:`m`, same shape (0 gives the bound 1).
        level: :math:`\\varepsilon` in (0, 1): the bound fails with probability at most this.

    Returns:
        The bounds, an array of the broadcast shape (a 0-d array for scalars).

    Example:
        >>> clopper_pearson_upper([0, 5], [100, 100], 0.05).round(4).tolist()
        [0.0295, 0.1023]
    """
    from scipy.stats import beta

    s, m = np.broadcast_arrays(np.asarray(errors, dtype=np.float64),
                               np.asarray(n, dtype=np.float64))
    out = np.ones(s.shape)
    ok = s < m
    out[ok] = beta.ppf(1.0 - level, s[ok] + 1.0, m[ok] - s[ok])
    return out


def _hb_pvalue(rhat: np.ndarray, m: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Hoeffding–Bentkus p-value of ``R >= a`` given the mean ``rhat`` of ``m`` losses."""
    from scipy.special import xlogy
    from scipy.stats import binom

    q = np.minimum(rhat, a)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = xlogy(q, q / a) + xlogy(1.0 - q, (1.0 - q) / (1.0 - a))
        h = np.where(a >= 1.0, np.where(q >= 1.0, 0.0, np.inf), h)
        hoeffding = np.where(m > 0, np.exp(-m * h), 1.0)
    bentkus = np.e * binom.cdf(np.ceil(m * rhat - 1e-9), m, a)
    return np.minimum(hoeffding, bentkus)


def hoeffding_bentkus_upper(mean: Any, n: Any, level: float, *, steps: int = 60) -> np.ndarray:
    """The Hoeffding–Bentkus upper bound on a mean loss in [0, 1] (module docstring).

    Args:
        mean: the observed mean losses :math:`\\hat R` (scalar or array).
        n: the numbers of losses :math:`m`, same shape (0 gives the bound 1).
        level: :math:`\\varepsilon` in (0, 1).
        steps: bisection steps (60 reach float precision).

    Returns:
        The bounds, an array of the broadcast shape.

    Example:
        >>> hoeffding_bentkus_upper([0.0, 0.05], 100, 0.05).round(4).tolist()
        [0.0295, 0.1173]
    """
    rhat, m = np.broadcast_arrays(np.clip(np.asarray(mean, dtype=np.float64), 0.0, 1.0),
                                  np.asarray(n, dtype=np.float64))
    lo, hi = rhat.copy(), np.ones(rhat.shape)  # p(lo) > level >= p(hi) = 0 (or rhat = 1)
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        passed = _hb_pvalue(rhat, m, mid) <= level
        hi = np.where(passed, mid, hi)
        lo = np.where(passed, lo, mid)
    return np.where(m > 0, hi, 1.0)
