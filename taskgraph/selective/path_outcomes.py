r"""Class paths on labelled rows: which climbed nodes are right, the hierarchical
risk–coverage curve, and a confidence threshold chosen for a target accuracy.

A climbed prediction is *correct* when its node is on the true path: the returned class
is an ancestor-or-self of the row's true class in the path's deepest labelled task. The
true path of a row comes from its labels through ``class_parents`` (a species label
gives the diet); a row counts only when its whole true path is known — its label at the
deepest task, or at a class with no child classes (a ``neutral`` sentiment) — and rows
whose labels contradict ``class_parents`` are an error. Rows with part of the path
unknown are left out (``skipped``).

With :math:`\kappa_{id}` the confidence of row :math:`i`'s node at depth :math:`d`
(:mod:`taskgraph.selective.class_paths`) and :math:`D_i(c) = \#\{d : \kappa_{id} \ge c\}`
its climbed depth at threshold :math:`c`,

.. math::
    \mathrm{coverage}(c) = \tfrac1n \#\{i : D_i(c) \ge 1\}, \qquad
    \mathrm{risk}(c) = \frac{\#\{i : D_i(c) \ge 1,\ \text{node } D_i(c) \text{ wrong}\}}
    {\#\{i : D_i(c) \ge 1\}},

and the mean depth :math:`\overline{D}(c)` of the accepted rows (the curve's ``size``).
The curve has a point at every distinct confidence, its area is the AURC of
:mod:`taskgraph.selective.sweep`. :func:`choose_confidence` picks :math:`c` for a target
accuracy :math:`1 - \alpha` with the guarantee of :mod:`taskgraph.selective.threshold`
(0/1 losses, Clopper–Pearson): with probability :math:`\ge 1 - \delta`, the error rate
of the accepted climbed predictions at the chosen :math:`c` is :math:`\le \alpha`.

Example:
    >>> import numpy as np
    >>> rows = PathOutcomes("species", confidence=np.float32([[.9, .6], [.8, .8], [.4, .3]]),
    ...                     wrong=np.array([[False, True], [False, False], [True, True]]))
    >>> curve = rows.risk_coverage()
    >>> curve.threshold.round(2).tolist(), curve.coverage.round(3).tolist()
    ([0.9, 0.8, 0.6, 0.4, 0.3], [0.333, 0.667, 0.667, 1.0, 1.0])
    >>> curve.risk.round(3).tolist(), curve.size.round(3).tolist()
    ([0.0, 0.0, 0.5, 0.667, 0.667], [1.0, 1.5, 2.0, 1.667, 2.0])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from taskgraph.errors import ArgumentError, DataError
from taskgraph.selective.class_paths import ClassPath, _paths, path_confidence
from taskgraph.selective.sweep import RiskCoverage, Sweep
from taskgraph.selective.threshold import ThresholdChoice, check_choice, choose_threshold

__all__ = ["PathOutcomes", "path_outcomes", "hierarchical_risk_coverage", "choose_confidence"]

_RISK = "error rate of the accepted climbed predictions"


@dataclass(frozen=True, eq=False)
class PathOutcomes:
    """One class path's confidences and right/wrong nodes on labelled rows.

    Args:
        path: the path's name.
        confidence: ``(N, L)`` :math:`\\kappa` of each node of each row's decoded path,
            non-increasing along a row, 0 past the path's end.
        wrong: ``(N, L)`` True where that node is not on the row's true path.
        skipped: labelled rows left out (their true path is not fully known).

    Raises:
        ArgumentError: shapes differ, or a row's confidence grows with depth.
    """

    path: str
    confidence: np.ndarray
    wrong: np.ndarray
    skipped: int = 0
    _sweep: list = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        conf, wrong = np.asarray(self.confidence), np.asarray(self.wrong)
        if conf.ndim != 2 or conf.shape != wrong.shape:
            raise ArgumentError(f"PathOutcomes: confidence {conf.shape} and wrong "
                                f"{wrong.shape} must both be (N, L)")
        if conf.shape[1] > 1 and (np.diff(conf, axis=1) > 0).any():
            raise ArgumentError("PathOutcomes: confidence must not grow along a row (it is "
                                "the running minimum down the path)")

    @property
    def n(self) -> int:
        """Rows evaluated."""
        return int(np.asarray(self.confidence).shape[0])

    def sweep(self) -> Sweep:
        """The rows as a :class:`~taskgraph.selective.sweep.Sweep`: one event per node."""
        if not self._sweep:
            conf = np.asarray(self.confidence, dtype=np.float32)
            wrong = np.asarray(self.wrong, dtype=np.float64)
            rows, depth = np.nonzero(conf > 0)
            before = np.where(depth > 0, wrong[rows, np.maximum(depth - 1, 0)], 0.0)
            self._sweep.append(Sweep(conf[rows, depth], accepted=(depth == 0),
                                     loss=wrong[rows, depth] - before,
                                     size=np.ones(len(rows)), n=self.n))
        return self._sweep[0]

    def risk_coverage(self) -> RiskCoverage:
        """The hierarchical risk–coverage curve (module docstring)."""
        return self.sweep().curve()

    def choose(self, *, target_accuracy: float = 0.95, delta: float = 0.05,
               grid: int | Sequence[float] = 100, method: str = "bonferroni"
               ) -> ThresholdChoice:
        """The confidence threshold for ``target_accuracy`` (module docstring)."""
        return choose_threshold(self.sweep(), target=target_accuracy, delta=delta, grid=grid,
                                method=method, risk_name=f"{_RISK} of {self.path}",
                                who="choose_confidence", target_name="target_accuracy")


def _true_path(path: ClassPath, targets: list[np.ndarray], who: str
               ) -> tuple[np.ndarray, np.ndarray]:
    """``(truth (N, L) class per level, -1 past the end; complete (N,))`` from the
    per-level labels (NaN or -1: missing), each level filled from the one below."""
    L, N = path.depth, len(targets[0])
    truth = np.full((N, L), -1, dtype=np.int64)
    for d in reversed(range(L)):
        own = np.where(np.isnan(targets[d]), -1, targets[d]).astype(np.int64)
        if d + 1 < L:
            below = truth[:, d + 1]
            derived = np.where(below >= 0, np.asarray(path.parent[d])[np.maximum(below, 0)], -1)
            clash = np.flatnonzero((own >= 0) & (derived >= 0) & (own != derived))
            if len(clash):
                i = int(clash[0])
                child, parent = path.tasks[d + 1], path.tasks[d]
                raise DataError(f"{who}: row {i}: {child} {path.classes[d + 1][below[i]]!r} "
                                f"lies under {parent} {path.classes[d][derived[i]]!r}, but the "
                                f"row's {parent} label is {path.classes[d][own[i]]!r}")
            own = np.where(derived >= 0, derived, own)
        truth[:, d] = own
    deepest = (truth >= 0).sum(1) - 1  # (N,) the true path is a prefix
    complete = deepest >= 0
    for d in range(L - 1):  # a path may end early, at a class without child classes
        ends = deepest == d
        complete[ends] = ~path.has_children(d)[truth[ends, d]]
    return truth, complete


def path_outcomes(model: Any, loader: Iterable[Any], *, samples: int = 0,
                  dropout: bool | None = None, who: str = "path_outcomes"
                  ) -> dict[str, PathOutcomes]:
    """Climbing's confidences and outcomes on every labelled row of ``loader``.

    Args:
        model: a :class:`~taskgraph.TaskGraphModel` with class paths.
        loader: batches ``(x, targets)`` (as for :func:`~taskgraph.evaluate`).
        samples: Monte-Carlo samples (0: the expected weights).
        dropout: what the samples are, as for ``predict`` (default: MC dropout where
            the model has dropout).
        who: the caller, for messages.

    Returns:
        ``{path name: PathOutcomes}``.

    Raises:
        ArgumentError: the model has no class path.
        DataError: a bad batch, labels that contradict ``class_parents``, or no row with a
            known true path.

    Example:
        >>> import taskgraph as tg
        >>> model = tg.compile("hierarchies/animals.yaml", in_features=3, task_dim=4)
        >>> nan = float("nan")
        >>> Y = torch.tensor([[1., nan, 0., 4.], [0., 1., nan, 5.]])  # a cat; a carnivore
        >>> rows = path_outcomes(model, [(torch.randn(2, 3), Y)])["species"]
        >>> rows.n, rows.skipped        # the carnivore's species is unknown: left out
        (1, 1)
    """
    from taskgraph.model.batches import predict_loader

    paths = _paths(model.hierarchy, who)
    gathered = predict_loader(model, loader, samples=samples, dropout=dropout, who=who)
    out = {}
    for path in paths:
        probs, labels, targets = [], [], []
        for task in path.tasks:
            g, j = model.layout.where[task]
            probs.append(torch.from_numpy(gathered[g].mean[:, j]))  # (N, K)
            labels.append(torch.from_numpy(gathered[g].label[:, j]))  # (N,)
            targets.append(gathered[g].target[:, j, 0].astype(np.float64))  # (N,)
        predicted = torch.stack(labels, 1).long()  # (N, L)
        kappa = path_confidence(probs, predicted).numpy()
        truth, complete = _true_path(path, targets, who)
        if not complete.any():
            raise DataError(f"{who}: no row has a known true path for class path "
                            f"{path.name!r} ({' > '.join(path.tasks)}); label its tasks")
        wrong = predicted.numpy() != truth
        out[path.name] = PathOutcomes(path.name, kappa[complete], wrong[complete],
                                      skipped=int((~complete).sum()))
    return out


def hierarchical_risk_coverage(model: Any, loader: Iterable[Any], *, samples: int = 0,
                               dropout: bool | None = None) -> dict[str, RiskCoverage]:
    """The hierarchical risk–coverage curve of every class path (module docstring).

    Example:
        >>> import torch, taskgraph as tg
        >>> model = tg.compile("hierarchies/animals.yaml", in_features=3, task_dim=4)
        >>> Y = torch.tensor([[1., 1., 0., 4.], [1., 0., 2., 600.]])   # cat, cow
        >>> curve = hierarchical_risk_coverage(model, [(torch.randn(2, 3), Y)])["species"]
        >>> curve.n, float(curve.coverage[-1])
        (2, 1.0)
    """
    outcomes = path_outcomes(model, loader, samples=samples, dropout=dropout,
                             who="hierarchical_risk_coverage")
    return {name: rows.risk_coverage() for name, rows in outcomes.items()}


def choose_confidence(model: Any, val_loader: Iterable[Any], *, target_accuracy: float = 0.95,
                      delta: float = 0.05, samples: int = 0, dropout: bool | None = None,
                      grid: int | Sequence[float] = 100, method: str = "bonferroni"
                      ) -> dict[str, ThresholdChoice]:
    """A confidence threshold per class path, chosen on ``val_loader`` so that the error
    rate of the accepted climbed predictions is at most ``1 - target_accuracy`` with
    probability ``1 - delta`` (module docstring; the exact statement is in
    :attr:`~taskgraph.selective.ThresholdChoice.guarantee`).

    Args:
        model: a :class:`~taskgraph.TaskGraphModel` with class paths.
        val_loader: labelled validation batches, not used to fit or select the model.
        target_accuracy: :math:`1 - \\alpha` in (0, 1).
        delta: :math:`\\delta` in (0, 1).
        samples: Monte-Carlo samples; predict with the same number.
        dropout: what the samples are, as for ``predict``; predict the same way.
        grid: the candidate thresholds: a count (``j / grid``) or the values.
        method: ``"bonferroni"`` or ``"fixed_sequence"``.

    Returns:
        ``{path name: ThresholdChoice}``; ``.threshold`` is ``None`` where none passed.

    Raises:
        ArgumentError: a bad argument, or no class path.
        DataError: bad validation data (see :func:`path_outcomes`).

    Example:
        >>> import taskgraph as tg
        >>> model = tg.compile("hierarchies/animals.yaml", in_features=3, task_dim=4)
        >>> Y = torch.tensor([[1., 1., 0., 4.]]).repeat(30, 1)        # 30 cats
        >>> choice = choose_confidence(model, [(torch.randn(30, 3), Y)], target_accuracy=0.5,
        ...                            grid=[0.9, 0.5, 0.1])["species"]
        >>> choice.candidates.tolist(), choice.level
        ([0.9, 0.5, 0.1], 0.016666666666666666)
    """
    check_choice(target=target_accuracy, delta=delta, grid=grid, method=method,
                 who="choose_confidence", target_name="target_accuracy")
    outcomes = path_outcomes(model, val_loader, samples=samples, dropout=dropout,
                             who="choose_confidence")
    return {name: rows.choose(target_accuracy=target_accuracy, delta=delta, grid=grid,
                              method=method) for name, rows in outcomes.items()}
