"""Per-task scores, one scorer per task type (:data:`SCORERS`), used by ``evaluate``.

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

from typing import Any

import numpy as np
from sklearn.metrics import (accuracy_score, average_precision_score, brier_score_loss, f1_score,
                             log_loss, mean_absolute_error, mean_squared_error, r2_score,
                             top_k_accuracy_score)

from taskgraph.metrics.calibration import (binary_calibration_columns, expected_calibration_error,
                                           multiclass_brier_score)
from taskgraph.metrics.ranking import ranking_columns

__all__ = ["TaskScores", "SCORERS"]

Scored = tuple[dict[str, dict[str, Any]], list[str]]


def _none(value: Any) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


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
