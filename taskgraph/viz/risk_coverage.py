r"""Risk–coverage curves pooled per hierarchy level: how the error rate falls when the
model answers only the predictions it is most certain about.

Every labelled (example, task) prediction of a level's tasks of one type is one event
(a multilabel task: one event per label). Its error and uncertainty are

* binary and multilabel: :math:`e = [\,(p \ge t) \ne y\,]`, uncertainty the predictive
  entropy :math:`H(p) = -p \log p - (1-p) \log (1-p)` of the (mean) probability;
* multiclass: :math:`e = [\arg\max_k p_k \ne y]`, uncertainty
  :math:`H(p) = -\sum_k p_k \log p_k`,

the errors of :func:`taskgraph.evaluate`. The curve and its area are
:func:`taskgraph.metrics.selective.risk_coverage` (ties in uncertainty averaged):

.. math::
    \mathrm{risk}(k/n) = \frac1k \sum_{i=1}^{k} e_{(i)}, \qquad
    \mathrm{AURC} = \frac1n \sum_{k=1}^{n} \mathrm{risk}(k/n)

with the events sorted by increasing uncertainty.

Example:
    >>> import io, torch, taskgraph as tg
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> model = tg.compile("hierarchies/cell_functions.yaml", in_features=5, task_dim=4)
    >>> Y = torch.randint(0, 2, (60, 7)).float()
    >>> loader = DataLoader(TensorDataset(torch.randn(60, 5), Y), batch_size=32)
    >>> curves = risk_coverage_curves(model, loader)
    >>> [(c.level, c.kind, c.tasks, c.errors.size) for c in curves]
    [(0, 'binary', 2, 120), (1, 'binary', 3, 180), (2, 'binary', 2, 120)]
    >>> plot_risk_coverage(model, loader, io.BytesIO()).getvalue()[:4]
    b'\x89PNG'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from taskgraph.errors import ArgumentError, DataError
from taskgraph.viz.style import INK, MUTED, check_target, figure, save

__all__ = ["Curve", "risk_coverage_curves", "plot_risk_coverage", "prediction_events"]

_MIN_ERRORS = 20  # the relative panel draws a level with at least this many errors


@dataclass
class Curve:
    """The pooled events of the tasks of one type at one hierarchy level.

    Attributes:
        level: the hierarchy level (``hierarchy.depths``: longest path from a root).
        kind: the task type.
        tasks: how many tasks are pooled.
        errors, uncertainty: ``(n,)`` 0/1 errors and predictive entropies (nats).
        coverage, risk: the risk–coverage curve, ``(n,)`` each.
    """

    level: int
    kind: str
    tasks: int
    errors: np.ndarray
    uncertainty: np.ndarray
    coverage: np.ndarray
    risk: np.ndarray

    @property
    def aurc(self) -> float:
        """The area under the curve: the mean risk."""
        return float(self.risk.mean())

    @property
    def error_rate(self) -> float:
        """The risk at full coverage."""
        return float(self.risk[-1])


def _entropy(p: np.ndarray, axis: int | None = None) -> np.ndarray:
    q = np.clip(p, 1e-12, 1.0)
    if axis is None:  # binary: p is the probability of the positive class
        r = np.clip(1.0 - p, 1e-12, 1.0)
        return -(p * np.log(q) + (1.0 - p) * np.log(r))
    return -(p * np.log(q)).sum(axis)


def prediction_events(kind: Any, probs: np.ndarray, target: np.ndarray, *,
                      threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """``(errors, uncertainty)`` of one task's labelled events (see the module docstring).

    Args:
        kind: the task's :class:`~taskgraph.model.task_types.TaskType`.
        probs: the task's view of the group's mean probabilities: ``(N,)`` binary,
            ``(N, K)`` multiclass or multilabel.
        target: its ``(N, w)`` target columns (NaN / -1 where missing).
        threshold: the decision threshold of binary and multilabel events.

    Example:
        >>> from taskgraph.model.task_types import TASK_TYPES
        >>> e, u = prediction_events(TASK_TYPES["binary"], np.array([.9, .2, .6]),
        ...                          np.array([[1.], [1.], [np.nan]]))
        >>> e.tolist(), u.round(3).tolist()
        ([0.0, 1.0], [0.325, 0.5])
    """
    if kind.name == "multiclass":
        y = target[:, 0]
        known = kind.known(y)
        errors = (probs.argmax(1) != y).astype(np.float64)
        return errors[known], _entropy(probs.astype(np.float64), axis=1)[known]
    y, p = target.reshape(-1), probs.reshape(-1).astype(np.float64)
    known = kind.known(y)
    errors = ((p >= threshold).astype(np.float64) != y).astype(np.float64)
    return errors[known], _entropy(p)[known]


def risk_coverage_curves(model: Any, loader: Iterable[Any], *, samples: int = 0,
                         threshold: float = 0.5) -> list[Curve]:
    """One :class:`Curve` per (hierarchy level, task type) with labelled events.

    Args:
        model: a :class:`~taskgraph.TaskGraphModel`.
        loader: labelled batches, as for :func:`taskgraph.evaluate`.
        samples: Monte-Carlo samples per prediction (0: mean synapse weights).
        threshold: the decision threshold of binary and multilabel events.

    Raises:
        DataError: no classification task has a labelled example, or as
            :func:`~taskgraph.model.batches.predict_loader`.
        ArgumentError: a ``threshold`` outside ``[0, 1]``.
    """
    from taskgraph.metrics.selective import risk_coverage
    from taskgraph.model.batches import predict_loader

    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not 0.0 <= threshold <= 1.0:
        raise ArgumentError(f"risk-coverage curves: threshold: expected a number in [0, 1], "
                            f"got {threshold!r}")
    depths = model.hierarchy.depths
    pooled: dict[tuple[int, str], list[tuple[np.ndarray, np.ndarray]]] = {}
    for pred in predict_loader(model, loader, samples=samples, who="risk-coverage curves"):
        kind = pred.group.task_type
        if not kind.probabilistic:
            continue
        for j, name in enumerate(pred.group.names):
            e, u = prediction_events(kind, kind.task_view(pred.mean, j), pred.target[:, j],
                                     threshold=threshold)
            if e.size:
                pooled.setdefault((depths[name], kind.name), []).append((e, u))
    curves = []
    for (level, kind), parts in sorted(pooled.items()):
        e = np.concatenate([p[0] for p in parts])
        u = np.concatenate([p[1] for p in parts])
        coverage, risk = risk_coverage(e, u)
        curves.append(Curve(level, kind, len(parts), e, u, coverage, risk))
    if not curves:
        raise DataError("risk-coverage curves: no classification task has a labelled example")
    return curves


def plot_risk_coverage(model: Any, loader: Iterable[Any], path: str | os.PathLike | Any, *,
                       samples: int = 0, threshold: float = 0.5,
                       curves: list[Curve] | None = None, max_points: int = 400) -> Any:
    """Risk against coverage per hierarchy level (left), and the same risk as a share of
    the level's error rate at full coverage (right: 1 at coverage 1; lower = abstaining
    on the most uncertain predictions removes more of the errors; levels with fewer
    than 20 errors are left out there).

    Args:
        model, loader, samples, threshold: as :func:`risk_coverage_curves`.
        path: the output file (.png, .svg, .pdf) or a binary file object (PNG).
        curves: the :func:`risk_coverage_curves` result, when already computed.
        max_points: points drawn per curve (evenly spaced in coverage).

    Returns:
        ``path``.
    """
    check_target(path)
    import matplotlib

    curves = curves if curves is not None else risk_coverage_curves(
        model, loader, samples=samples, threshold=threshold)
    cmap = matplotlib.colormaps["viridis"]
    levels = sorted({c.level for c in curves})
    with figure(10.0, 3.9, layout="constrained") as fig:
        ax, rel = fig.subplots(1, 2)
        for c in curves:
            n = c.coverage.size
            at = np.unique(np.round(np.linspace(0, n - 1, min(n, max_points))).astype(int))
            color = cmap(0.85 * levels.index(c.level) / max(len(levels) - 1, 1))
            style = "-" if c.kind in ("binary", "multilabel") else "--"
            label = (f"level {c.level} · {c.kind} ({c.tasks:,} task{'s' if c.tasks != 1 else ''}"
                     f"): AURC {c.aurc:.4f}, error {c.error_rate:.3f}")
            ax.plot(c.coverage[at], c.risk[at], style, color=color, label=label)
            if c.errors.sum() >= _MIN_ERRORS:  # fewer: a ratio of a few events is noise
                rel.plot(c.coverage[at], c.risk[at] / c.error_rate, style, color=color)
        ax.set(xlabel="coverage (share of predictions answered, most certain first)",
               ylabel="risk (error rate of those answered)", xlim=(0, 1))
        ax.set_ylim(bottom=0)
        ax.set_title("Risk–coverage per hierarchy level", loc="left")
        rel.axhline(1.0, color=MUTED, linewidth=0.8, linestyle=(0, (3, 2)))
        rel.set(xlabel="coverage", ylabel="risk / error rate at full coverage", xlim=(0, 1))
        rel.set_ylim(0, 1.15 if not rel.lines[1:] else None)
        rel.set_title("Relative to answering everything", loc="left", color=INK)
        few = sum(1 for c in curves if c.errors.sum() < _MIN_ERRORS)
        if few:
            # bottom right: every drawn curve is high there (it ends at 1 at full
            # coverage), while the top is where the dashed line at 1 runs
            rel.text(0.98, 0.03, f"{few} level{'s' if few != 1 else ''} with fewer than "
                     f"{_MIN_ERRORS} errors not drawn", transform=rel.transAxes,
                     fontsize=7, color=MUTED, va="bottom", ha="right")
        fig.legend(loc="outside lower center", ncol=2 if len(curves) > 3 else 1,
                   fontsize=7.5)
        return save(fig, path)
