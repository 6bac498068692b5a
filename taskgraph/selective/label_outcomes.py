r"""Label sets on labelled rows: the risk–coverage curve over the threshold, and a
threshold chosen for a target precision with a guarantee.

The *evaluated* labels are the binary tasks less the excluded ones (default: the
hierarchy's roots, as :func:`~taskgraph.evaluate` does; the HMC protocol passes
``root`` and the Gene Ontology roots), each where the row carries it. At threshold
:math:`\tau`, row :math:`i` predicts :math:`n_i(\tau)` evaluated labels, of which
:math:`f_i(\tau)` are false; it is *accepted* when :math:`n_i \ge 1`, and its loss is its
false-discovery proportion :math:`f_i / n_i \in [0, 1]`:

.. math::
    \mathrm{coverage}(\tau) = \tfrac1n \#\{i : n_i \ge 1\}, \qquad
    \mathrm{risk}(\tau) = \operatorname{mean}_{i:\, n_i \ge 1} \frac{f_i}{n_i}, \qquad
    \mathrm{precision}(\tau) = 1 - \frac{\sum_i f_i}{\sum_i n_i},

the last the micro precision of the predicted labels, reported beside; the curve's
``size`` is the mean :math:`n_i` of accepted rows. :func:`choose_label_threshold` picks
:math:`\tau` for a target precision :math:`1 - \alpha` with the guarantee of
:mod:`taskgraph.selective.threshold`: with probability :math:`\ge 1 - \delta`, the mean
precision of the accepted rows' label sets, :math:`1 - \mathrm{risk}`, is at least the
target. The bound is Hoeffding–Bentkus, for losses in [0, 1]. The guarantee is on this
per-row precision, not on the micro precision: the labels of one row are not
independent (one wrong branch gives several false labels at once), so their pooled
count has no exact binomial bound, while rows are i.i.d. and their losses bounded.

Example:
    >>> import numpy as np
    >>> rows = LabelOutcomes(("a", "b"), score=np.float32([[.9, .6], [.8, .3]]),
    ...                      truth=np.array([[1, 0], [0, 0]]), evaluated=np.array([True, True]))
    >>> curve = rows.risk_coverage()
    >>> curve.threshold.round(2).tolist(), curve.risk.round(3).tolist()
    ([0.9, 0.8, 0.6, 0.3], [0.0, 0.5, 0.75, 0.75])
    >>> curve.precision.round(3).tolist()
    [1.0, 0.5, 0.333, 0.25]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from taskgraph.errors import ArgumentError, DataError
from taskgraph.selective.label_sets import LabelDag, _check, _label_dag
from taskgraph.selective.sweep import RiskCoverage, Sweep
from taskgraph.selective.threshold import ThresholdChoice, check_choice, choose_threshold
from taskgraph.vocabulary import suggest

__all__ = ["LabelOutcomes", "label_outcomes", "label_set_risk_coverage",
           "choose_label_threshold"]

_RISK = "mean false-discovery proportion of the non-empty label sets"


@dataclass(frozen=True, eq=False)
class LabelOutcomes:
    """Coherent label scores and true labels on labelled rows.

    Args:
        names: the binary tasks (columns).
        score: ``(N, T)`` the coherent scores :math:`s` (:mod:`~taskgraph.selective.label_sets`).
        truth: ``(N, T)`` 1, 0, or NaN / -1 where the row does not carry the label.
        evaluated: ``(T,)`` True for the labels scored.
    """

    names: tuple[str, ...]
    score: np.ndarray
    truth: np.ndarray
    evaluated: np.ndarray
    _sweep: list = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        s, y = np.asarray(self.score), np.asarray(self.truth)
        if s.ndim != 2 or s.shape != y.shape or s.shape[1] != len(self.names) \
                or np.asarray(self.evaluated).shape != (len(self.names),):
            raise ArgumentError(f"LabelOutcomes: score {s.shape}, truth {y.shape} and "
                                f"evaluated {np.asarray(self.evaluated).shape} must be (N, T), "
                                f"(N, T) and (T,) with T = {len(self.names)} names")

    @property
    def n(self) -> int:
        return int(np.asarray(self.score).shape[0])

    def sweep(self) -> Sweep:
        """The rows as a :class:`~taskgraph.selective.sweep.Sweep`: one event per evaluated,
        labelled (row, label) entry; its loss is the change of its row's proportion."""
        if self._sweep:
            return self._sweep[0]
        s = np.asarray(self.score, dtype=np.float32)
        y = np.asarray(self.truth, dtype=np.float64)
        known = ~np.isnan(y) & (y != -1) & np.asarray(self.evaluated, dtype=bool)[None, :]
        rows, cols = np.nonzero(known & (s > 0))
        score, false = s[rows, cols], (y[rows, cols] == 0).astype(np.float64)
        order = np.argsort(-score, kind="stable")  # the order the events become active
        rows, score, false = rows[order], score[order], false[order]
        by_row = np.argsort(rows, kind="stable")  # grouped by row, activation order kept
        r = rows[by_row]
        starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
        first = np.repeat(starts, np.diff(np.r_[starts, len(r)]))  # each event's group start
        rank = np.arange(len(r)) - first + 1  # n_i after the event
        f = false[by_row]
        cum = np.cumsum(f)
        fp = cum - (cum - f)[first]  # f_i after the event
        with np.errstate(divide="ignore", invalid="ignore"):
            before = np.where(rank > 1, (fp - f) / (rank - 1), 0.0)
        loss = np.empty(len(r))
        loss[by_row] = fp / rank - before
        accepted = np.empty(len(r))
        accepted[by_row] = rank == 1
        self._sweep.append(Sweep(score, accepted=accepted, loss=loss, size=np.ones(len(r)),
                                 n=self.n, false=false))
        return self._sweep[0]

    def risk_coverage(self) -> RiskCoverage:
        """The curve (module docstring), a point at every distinct score."""
        return self.sweep().curve()

    def choose(self, *, target_precision: float = 0.9, delta: float = 0.05,
               grid: int | Sequence[float] = 100, method: str = "bonferroni"
               ) -> ThresholdChoice:
        """The threshold for ``target_precision`` (module docstring)."""
        return choose_threshold(self.sweep(), target=target_precision, delta=delta, grid=grid,
                                method=method, bounded=True, risk_name=_RISK,
                                who="choose_label_threshold", target_name="target_precision")


def _evaluated(dag: LabelDag, hierarchy: Any, roots: Iterable[str] | None, who: str
               ) -> np.ndarray:
    if roots is None:  # the hierarchy's roots that are labels of the DAG
        names: tuple = tuple(r for r in hierarchy.roots if r in dag.names)
    else:
        names = (roots,) if isinstance(roots, str) else tuple(roots)
    for name in names:
        if name not in dag.names:
            raise ArgumentError(f"{who}: roots: no binary task {name!r}"
                                f"{suggest(str(name), dag.names)}")
    return np.array([name not in names for name in dag.names], dtype=bool)


def label_outcomes(model: Any, loader: Iterable[Any], *, samples: int = 0,
                   dropout: bool | None = None, max_uncertainty: float | None = None, uncertainty: str = "std",
                   roots: Iterable[str] | None = None, who: str = "label_outcomes"
                   ) -> LabelOutcomes:
    """The coherent scores and true labels of every row of ``loader``.

    Args:
        model: a :class:`~taskgraph.TaskGraphModel` with binary tasks.
        loader: batches ``(x, targets)``.
        samples: Monte-Carlo samples; ``max_uncertainty`` needs ``samples > 0``.
        dropout: what the samples are, as for ``predict`` (default: MC dropout where
            the model has dropout).
        max_uncertainty, uncertainty: withholding, as in
            :func:`~taskgraph.selective.label_sets`.
        roots: binary tasks not evaluated (default: the hierarchy's roots; ``[]``: none).
        who: the caller, for messages.

    Raises:
        ArgumentError: a bad argument, or no binary task.
        DataError: a bad batch or target, or no evaluated label carried by any row.

    Example:
        >>> import taskgraph as tg
        >>> model = tg.compile("hierarchies/cell_functions.yaml", in_features=3, task_dim=4)
        >>> rows = label_outcomes(model, [(torch.randn(5, 3), torch.ones(5, 7))])
        >>> rows.score.shape, int(rows.evaluated.sum())    # the two roots are not evaluated
        ((5, 7), 5)
    """
    from taskgraph.model.batches import iter_batches
    from taskgraph.model.targets import check_targets, target_blocks

    _check(1.0, max_uncertainty, uncertainty, who)
    if max_uncertainty is not None and samples == 0:
        raise ArgumentError(f"{who}: max_uncertainty needs samples > 0")
    dag = _label_dag(model.hierarchy, who)
    evaluated = _evaluated(dag, model.hierarchy, roots, who)
    layout, g = model.layout, model.layout.binary_group
    device = next(model.parameters(), torch.empty(0)).device
    scores, truths = [], []
    for x, y in iter_batches(loader, device, who=who, move_targets=False):
        with torch.no_grad():
            pred = model.predict(x, samples=samples, dropout=dropout)
        _, _, s = dag.scores(pred, max_uncertainty=max_uncertainty, uncertainty=uncertainty)
        block = target_blocks(layout, y, s.shape[0], torch.device("cpu"))[g]  # (B, T, 1)
        check_targets(layout.groups[g], block, hard=True)
        scores.append(s.float().cpu().numpy())
        truths.append(block[..., 0].numpy().astype(np.float64))
    score, truth = np.concatenate(scores), np.concatenate(truths)
    known = ~np.isnan(truth) & (truth != -1)
    if not (known & evaluated[None, :]).any():
        raise DataError(f"{who}: no row carries an evaluated binary label "
                        f"({int(evaluated.sum())} evaluated of {len(dag)})")
    return LabelOutcomes(dag.names, score, truth, evaluated)


def label_set_risk_coverage(model: Any, loader: Iterable[Any], *, samples: int = 0,
                            dropout: bool | None = None, max_uncertainty: float | None = None, uncertainty: str = "std",
                            roots: Iterable[str] | None = None) -> RiskCoverage:
    """The label-set risk–coverage curve over the threshold (module docstring).

    Example:
        >>> import torch, taskgraph as tg
        >>> model = tg.compile("hierarchies/cell_functions.yaml", in_features=3, task_dim=4)
        >>> Y = torch.randint(0, 2, (16, 7)).float()
        >>> curve = label_set_risk_coverage(model, [(torch.randn(16, 3), Y)])
        >>> curve.n, curve.precision is not None
        (16, True)
    """
    rows = label_outcomes(model, loader, samples=samples, dropout=dropout,
                          max_uncertainty=max_uncertainty,
                          uncertainty=uncertainty, roots=roots, who="label_set_risk_coverage")
    return rows.risk_coverage()


def choose_label_threshold(model: Any, val_loader: Iterable[Any], *,
                           target_precision: float = 0.9, delta: float = 0.05,
                           samples: int = 0, dropout: bool | None = None,
                           max_uncertainty: float | None = None,
                           uncertainty: str = "std", roots: Iterable[str] | None = None,
                           grid: int | Sequence[float] = 100, method: str = "bonferroni"
                           ) -> ThresholdChoice:
    """The label-set threshold :math:`\\tau`, chosen on ``val_loader`` so that the mean
    precision of the non-empty label sets is at least ``target_precision`` with
    probability ``1 - delta`` (module docstring; the exact statement is in
    :attr:`~taskgraph.selective.ThresholdChoice.guarantee`).

    Args:
        model: a :class:`~taskgraph.TaskGraphModel` with binary tasks.
        val_loader: labelled validation batches, not used to fit or select the model.
        target_precision: :math:`1 - \\alpha` in (0, 1).
        delta: :math:`\\delta` in (0, 1).
        samples, dropout, max_uncertainty, uncertainty: predict with the same values.
        roots: binary tasks not evaluated (default: the hierarchy's roots).
        grid, method: as for :func:`~taskgraph.selective.choose_confidence`.

    Returns:
        A :class:`~taskgraph.selective.ThresholdChoice` (``threshold`` ``None`` if none
        passed).

    Example:
        >>> import taskgraph as tg
        >>> model = tg.compile("hierarchies/cell_functions.yaml", in_features=3, task_dim=4)
        >>> rows = [(torch.randn(60, 3), torch.ones(60, 7))]     # every label true
        >>> choice = choose_label_threshold(model, rows, target_precision=0.8)
        >>> choice.threshold, choice.risk                    # nothing false: the lowest
        (0.01, 0.0)
    """
    check_choice(target=target_precision, delta=delta, grid=grid, method=method,
                 who="choose_label_threshold", target_name="target_precision")
    rows = label_outcomes(model, val_loader, samples=samples, dropout=dropout,
                          max_uncertainty=max_uncertainty,
                          uncertainty=uncertainty, roots=roots, who="choose_label_threshold")
    return rows.choose(target_precision=target_precision, delta=delta, grid=grid,
                       method=method)
