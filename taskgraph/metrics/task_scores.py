r"""Per-task scores, one scorer per task type (:data:`SCORERS`), used by ``evaluate``.

Per task, over the examples that carry its label, with scikit-learn's metric functions
(binary tasks: vectorized equivalents, below):

=============  ===================================================================
binary         accuracy, F1, AUROC, average precision (AUROC / AP ``None`` when one
               class is present), ECE, NLL, Brier
multiclass     accuracy, macro F1, weighted F1, top-3 accuracy (K > 3), ECE
               (top-label), NLL, Brier (multiclass, in ``[0, 2]``)
multilabel     micro F1, macro F1 (mean over labels with a label), micro AP, ECE / NLL /
               Brier over the labelled (example, label) entries
regression     MSE, MAE, R² (``None`` under 2 examples); k outputs: mean over outputs
=============  ===================================================================

NLL is :math:`-\frac1n \sum_i \log p_i(y_i)` with probabilities clipped to
:math:`[\varepsilon, 1 - \varepsilon]`, :math:`\varepsilon` the float64 machine epsilon
(as ``sklearn.metrics.log_loss``); Brier is :math:`\frac1n \sum_i (p_i - y_i)^2` for a
binary label and :math:`\frac1n \sum_i \sum_k (p_{ik} - [y_i = k])^2` for a multiclass
task (:func:`~taskgraph.metrics.calibration.multiclass_brier_score`).

The probabilistic types also give, from their :meth:`~TaskScores.events`
(:func:`uncertainty_scores`, :mod:`~taskgraph.metrics.selective`):

- ``ece_adaptive``: the ECE with 15 equal-mass bins (confidence: ``p`` of the positive
  class for binary and multilabel labels, the top-class probability for multiclass, as
  for ``ece``);
- ``aurc``: the area under the risk–coverage curve, the predictive entropy ranking the
  examples;
- ``error_auroc_entropy``, and with Monte-Carlo samples ``error_auroc_mutual_info`` and
  ``error_auroc_std``: how well each uncertainty score detects errors (AUROC);
- ``entropy``: the mean predictive entropy over all examples, labelled or not.

An **error** is ``1[(p >= threshold) != y]`` for a binary or multilabel label and
``1[argmax_k p_k != y]`` for a multiclass task (the top-label ECE's event; it can differ
from the class-path-decoded label that ``accuracy`` scores). The **uncertainty scores**
of an example: the predictive entropy of its mean probabilities,
:math:`-p \log p - (1 - p)\log(1 - p)` (``p`` clipped to :math:`[10^{-7}, 1 - 10^{-7}]`)
or :math:`-\sum_k p_k \log p_k`; its mutual information between the prediction and the
sampled weights; and the std over the samples of ``p`` (multiclass: of the top class's
probability). Multilabel tasks pool their labelled (example, label) entries.

Binary and multilabel decisions are ``p >= threshold``; multiclass decisions are the
model's labels (class-path-consistent where ``class_parents`` link tasks). Each task's
``score`` is its scorer's :meth:`~TaskScores.primary`. Binary tasks are scored together,
as one ``(N, T)`` matrix: F1 with one scikit-learn call, and accuracy, AUROC, AP, NLL
and Brier with vectorized formulas equal to scikit-learn's per task
(:mod:`~taskgraph.metrics.ranking`,
:func:`~taskgraph.metrics.calibration.binary_calibration_columns`): a call per task spends
most of its time checking its input.

The model layer's :mod:`~taskgraph.model.task_types` says what a type means; this module
says how it is scored, since scoring belongs to the metrics layer above it. A new type
adds one :class:`TaskScores` subclass here.

Example:
    >>> SCORERS["multiclass"].primary({"accuracy": 0.75})
    0.75
    >>> SCORERS["regression"].primary({"r2": -3.0})  # R² clipped to [-1, 1]
    -1.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import (accuracy_score, average_precision_score, brier_score_loss, f1_score,
                             log_loss, mean_absolute_error, mean_squared_error, r2_score,
                             top_k_accuracy_score)

from taskgraph.metrics.calibration import (binary_calibration_columns, equal_mass_ece_columns,
                                           expected_calibration_error, multiclass_brier_score)
from taskgraph.metrics.ranking import ranking_columns
from taskgraph.metrics.selective import aurc_columns, error_auroc_columns

__all__ = ["TaskScores", "SCORERS", "Events", "uncertainty_scores"]

Scored = tuple[dict[str, dict[str, Any]], list[str]]


def _none(value: Any) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


@dataclass
class Events:
    """The labelled decisions of one head group's tasks, one ``(M, T_g)`` column per task:
    ``M`` = N examples, or N·K (example, label) entries of a K-label multilabel task.

    Attributes:
        known: labelled entries.
        error: 1 where the decision is wrong (module docstring), else 0.
        outcome, confidence: the ECE's event and its predicted probability.
        uncertainty: ``"entropy"`` and, with samples, ``"mutual_info"`` and ``"std"``.
    """

    known: np.ndarray
    error: np.ndarray
    outcome: np.ndarray
    confidence: np.ndarray
    uncertainty: dict[str, np.ndarray]


def _bernoulli_entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(p * np.log(p) + (1 - p) * np.log1p(-p))


def uncertainty_scores(events: Events, names: tuple[str, ...] | list[str]
                       ) -> dict[str, dict[str, float | None]]:
    """``ece_adaptive``, ``aurc``, ``error_auroc_<score>`` per uncertainty score and the
    mean ``entropy`` of every task of a group (module docstring), all tasks at once.

    Example:
        >>> e = Events(known=np.ones((2, 1), bool), error=np.array([[0.], [1.]]),
        ...            outcome=np.array([[1.], [0.]]), confidence=np.array([[.9], [.6]]),
        ...            uncertainty={"entropy": np.array([[.3], [.7]])})
        >>> uncertainty_scores(e, ["a"])["a"]   # doctest: +NORMALIZE_WHITESPACE
        {'ece_adaptive': 0.35, 'aurc': 0.25, 'error_auroc_entropy': 1.0,
         'entropy': 0.5}
    """
    columns = {"ece_adaptive": equal_mass_ece_columns(events.outcome, events.confidence,
                                                      events.known)}
    columns["aurc"], columns["error_auroc_entropy"] = aurc_columns(
        events.error, events.uncertainty["entropy"], events.known, auroc=True)  # one sort
    for score, u in events.uncertainty.items():
        if score != "entropy":
            columns[f"error_auroc_{score}"] = error_auroc_columns(events.error, u, events.known)
    columns["entropy"] = events.uncertainty["entropy"].mean(0)  # labelled or not
    return {name: {key: _none(value[j]) for key, value in columns.items()}
            for j, name in enumerate(names)}


class TaskScores:
    """How the tasks of one type are scored.

    Attributes:
        key: the primary metric (a task's ``score``).
        description: the primary metric in words (the report's footer).
        shown: ``(metric, label)`` pairs of the Markdown table.
    """

    key: str = ""
    description: str = ""
    shown: tuple[tuple[str, str], ...] = ()

    def score(self, pred: Any, threshold: float) -> Scored:
        """Metrics of every task of a group (``pred``: its
        :class:`~taskgraph.model.batches.GroupPredictions`, targets checked), and the
        tasks left unscored (a binary task whose labelled examples have one class)."""
        raise NotImplementedError

    def primary(self, metrics: dict[str, Any]) -> float | None:
        return metrics[self.key]

    def events(self, pred: Any, threshold: float,
               sampled: dict[str, np.ndarray] | None = None) -> Events | None:
        """The group's :class:`Events` (``None`` for a type without probabilities).

        ``sampled``: the per-example ``"mutual_info"`` and ``"std"`` blocks of the
        group's Monte-Carlo prediction (shaped like ``pred.mean`` without, and with, the
        class axis), or ``None`` without samples."""
        return None


class BinaryScores(TaskScores):
    key = "average_precision"  # None with a single class: AP is undefined
    description = ("average precision (none where it is undefined: the labelled examples "
                   "have a single class)")
    shown = (("accuracy", "acc"), ("f1", "F1"), ("auroc", "AUROC"),
             ("average_precision", "AP"))

    def score(self, pred: Any, threshold: float) -> Scored:
        names, Y = pred.group.names, pred.target[..., 0]  # (N, T)
        known = pred.group.task_type.known(Y)
        y = np.where(known, Y, 0).astype(np.int64)
        P = pred.mean.astype(np.float64)
        decided = (P >= threshold) & known  # missing entries: true negatives, F1 unchanged
        n, positives = known.sum(0), y.sum(0)
        if len(names) == 1:
            f1 = np.array([f1_score(y[:, 0], decided[:, 0], zero_division=0)])
        else:
            f1 = f1_score(y, decided.astype(np.int64), average=None, zero_division=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            accuracy = ((decided == (y == 1)) & known).sum(0) / n
        auroc, ap = ranking_columns(y, P, known, (positives > 0) & (positives < n))
        calib = binary_calibration_columns(y, P, known)
        out = {}
        for j, name in enumerate(names):
            labelled = n[j] > 0
            out[name] = {"type": pred.group.kind, "n": int(n[j]),
                         "accuracy": _none(accuracy[j]) if labelled else None,
                         "f1": float(f1[j]) if labelled else None,
                         "auroc": _none(auroc[j]), "average_precision": _none(ap[j]),
                         "ece": _none(calib["ece"][j]), "nll": _none(calib["nll"][j]),
                         "brier": _none(calib["brier"][j])}
        single = (n > 0) & ((positives == 0) | (positives == n))
        return out, [names[j] for j in np.flatnonzero(single)]

    def events(self, pred: Any, threshold: float,
               sampled: dict[str, np.ndarray] | None = None) -> Events:
        Y = pred.target[..., 0]  # (N, T)
        known = pred.group.task_type.known(Y)
        y = np.where(known, Y, 0.0).astype(np.float64)
        P = pred.mean.astype(np.float64)  # (N, T)
        uncertainty = {"entropy": _bernoulli_entropy(P)}
        if sampled is not None:
            uncertainty.update(mutual_info=sampled["mutual_info"], std=sampled["std"])
        return Events(known, ((P >= threshold) != (y == 1)).astype(np.float64), y, P,
                      uncertainty)


class MulticlassScores(TaskScores):
    key = "accuracy"
    description = "accuracy"
    shown = (("accuracy", "acc"), ("f1_macro", "F1 macro"), ("f1_weighted", "F1 weighted"),
             ("top3_accuracy", "top-3 acc"))

    def score(self, pred: Any, threshold: float) -> Scored:
        P, Y, labels = pred.mean, pred.target[..., 0], pred.label  # (N, T, K), (N, T) twice
        K = P.shape[-1]
        classes = np.arange(K)
        out = {}
        for j, name in enumerate(pred.group.names):
            y = Y[:, j]
            known = pred.group.task_type.known(y)
            metrics: dict[str, Any] = {"type": pred.group.kind, "n": int(known.sum())}
            keys = ["accuracy", "f1_macro", "f1_weighted"] + (["top3_accuracy"] if K > 3 else [])
            metrics.update(dict.fromkeys(keys + ["ece", "nll", "brier"]))
            if known.any():
                yk = y[known].astype(np.int64)
                pk = P[known, j].astype(np.float64)
                pk /= pk.sum(1, keepdims=True)
                lk = labels[known, j]
                metrics.update(
                    accuracy=float(accuracy_score(yk, lk)),
                    f1_macro=float(f1_score(yk, lk, average="macro", zero_division=0)),
                    f1_weighted=float(f1_score(yk, lk, average="weighted", zero_division=0)),
                    ece=expected_calibration_error(yk, pk),
                    nll=float(log_loss(yk, pk, labels=classes)),
                    brier=multiclass_brier_score(yk, pk))
                if K > 3:
                    metrics["top3_accuracy"] = float(top_k_accuracy_score(yk, pk, k=3,
                                                                          labels=classes))
            out[name] = metrics
        return out, []

    def events(self, pred: Any, threshold: float,
               sampled: dict[str, np.ndarray] | None = None) -> Events:
        Y = pred.target[..., 0]  # (N, T)
        known = pred.group.task_type.known(Y)
        P = pred.mean.astype(np.float64)  # (N, T, K)
        P /= P.sum(-1, keepdims=True)
        top = P.argmax(-1)  # (N, T)
        right = (top == Y).astype(np.float64)
        uncertainty = {"entropy": -(P * np.log(np.maximum(P, 1e-12))).sum(-1)}
        if sampled is not None:
            std = np.take_along_axis(sampled["std"], top[..., None], -1)[..., 0]
            uncertainty.update(mutual_info=sampled["mutual_info"], std=std)
        return Events(known, 1.0 - right, right, P.max(-1), uncertainty)


class MultilabelScores(TaskScores):
    key = "f1_micro"
    description = "micro F1"
    shown = (("f1_micro", "F1 micro"), ("f1_macro", "F1 macro"),
             ("average_precision", "AP micro"))

    def score(self, pred: Any, threshold: float) -> Scored:
        out = {}
        for j, name in enumerate(pred.group.names):  # (N, K) each; micro pools the entries
            y, p = pred.target[:, j], pred.mean[:, j].astype(np.float64)
            known = pred.group.task_type.known(y)
            metrics: dict[str, Any] = {"type": pred.group.kind, "n": int(known.any(1).sum())}
            metrics.update(dict.fromkeys(["f1_micro", "f1_macro", "average_precision",
                                          "ece", "nll", "brier"]))
            if known.any():
                yk, pk = y[known].astype(np.int64), p[known]
                metrics.update(
                    f1_micro=float(f1_score(yk, pk >= threshold, zero_division=0)),
                    ece=expected_calibration_error(yk, pk),
                    nll=float(log_loss(yk, pk, labels=[0, 1])),
                    brier=float(brier_score_loss(yk, pk, pos_label=1)))
                y0 = np.where(known, y, 0).astype(np.int64)
                decided = ((p >= threshold) & known).astype(np.int64)  # missing: true negatives
                per_label = (f1_score(y0, decided, average=None, zero_division=0)
                             if y.shape[1] > 1 else
                             np.array([f1_score(y0[:, 0], decided[:, 0], zero_division=0)]))
                metrics["f1_macro"] = float(per_label[known.any(0)].mean())
                if 0 < yk.sum() < yk.size:
                    metrics["average_precision"] = float(average_precision_score(yk, pk))
            out[name] = metrics
        return out, []

    def events(self, pred: Any, threshold: float,
               sampled: dict[str, np.ndarray] | None = None) -> Events:
        N, T, K = pred.mean.shape

        def entries(block: np.ndarray) -> np.ndarray:  # (N, T, K) -> (N * K, T)
            return block.transpose(0, 2, 1).reshape(N * K, T)

        known = entries(pred.group.task_type.known(pred.target))
        y = np.where(known, entries(pred.target), 0.0).astype(np.float64)
        P = entries(pred.mean).astype(np.float64)
        uncertainty = {"entropy": _bernoulli_entropy(P)}
        if sampled is not None:
            uncertainty.update(mutual_info=entries(sampled["mutual_info"]),
                               std=entries(sampled["std"]))
        return Events(known, ((P >= threshold) != (y == 1)).astype(np.float64), y, P,
                      uncertainty)


class RegressionScores(TaskScores):
    key = "r2"
    description = "R² clipped to [-1, 1]"
    shown = (("mse", "MSE"), ("mae", "MAE"), ("r2", "R²"))

    def score(self, pred: Any, threshold: float) -> Scored:
        out = {}
        for j, name in enumerate(pred.group.names):  # (N, k) each: the mean over outputs
            y, p = pred.target[:, j].astype(np.float64), pred.mean[:, j].astype(np.float64)
            known = ~np.isnan(y)
            mse, mae, r2 = [], [], []
            for o in range(y.shape[1]):
                rows = known[:, o]
                if rows.any():
                    mse.append(mean_squared_error(y[rows, o], p[rows, o]))
                    mae.append(mean_absolute_error(y[rows, o], p[rows, o]))
                if rows.sum() >= 2:
                    r2.append(r2_score(y[rows, o], p[rows, o]))
            out[name] = {"type": pred.group.kind, "n": int(known.any(1).sum()),
                         "mse": float(np.mean(mse)) if mse else None,
                         "mae": float(np.mean(mae)) if mae else None,
                         "r2": float(np.mean(r2)) if r2 else None}
        return out, []

    def primary(self, metrics: dict[str, Any]) -> float | None:
        r2 = metrics["r2"]
        return None if r2 is None else float(np.clip(r2, -1.0, 1.0))


#: Task type name -> its scorer, for every type of :data:`~taskgraph.model.task_types.TASK_TYPES`.
SCORERS: dict[str, TaskScores] = {"binary": BinaryScores(), "multiclass": MulticlassScores(),
                                  "multilabel": MultilabelScores(),
                                  "regression": RegressionScores()}
