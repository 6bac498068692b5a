"""`evaluate`: run a model over a loader and score every task, its calibration and the
label hierarchy.

Per task, over the examples that carry its label (missing: NaN, or ``-1`` for class
tasks), with scikit-learn's metric functions (binary tasks: see below):

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
model's labels (``TaskPrediction.label``, class-path-consistent where ``class_parents``
link tasks). With ``samples > 0`` probabilities are the Monte-Carlo means and
classification tasks also get ``entropy`` and ``mutual_info``: the mean predictive
entropy and mutual information (nats) over all examples, labelled or not. Each task's
``score`` is its primary metric (:data:`~taskgraph.metrics.report.PRIMARY`); the report's
``overall`` is their mean. A binary task whose labelled examples all have one class has
no score (its AP is undefined; an accuracy in its place would count "always predict the
one class" as perfect): it is listed in ``Report.single_class`` and left out of
``overall``.

Binary tasks are scored together, as one ``(N, T)`` matrix: F1 with one scikit-learn
call, and accuracy, AUROC, AP, NLL and Brier with vectorized formulas equal to
scikit-learn's ``accuracy_score``, ``roc_auc_score``, ``average_precision_score``,
``log_loss`` and ``brier_score_loss`` per task; a call per task spends most of its time
checking its input, which makes a 4,000-label hierarchy take tens of seconds.

"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Iterable

import numpy as np
import torch
from sklearn.metrics import (accuracy_score, average_precision_score, brier_score_loss, f1_score,
                             log_loss, mean_absolute_error, mean_squared_error, r2_score,
                             top_k_accuracy_score)

from taskgraph.errors import DataError, TaskGraphError
from taskgraph.metrics.calibration import (binary_calibration_columns, expected_calibration_error,
                                           multiclass_brier_score)
from taskgraph.metrics.hierarchical import auprc_bar, coherence_violation_rate, hierarchical_prf
from taskgraph.metrics.report import Report
from taskgraph.model.loss import target_blocks
from taskgraph.train.data import split_batch
from taskgraph.vocabulary import suggest

__all__ = ["evaluate"]

_CPU = torch.device("cpu")  # where predictions are collected for scikit-learn


def evaluate(model: Any, loader: Iterable[Any], *, samples: int = 0, threshold: float = 0.5,
             roots: Iterable[str] | None = None, data_name: str | None = None) -> Report:
    """Score ``model`` on every batch of ``loader`` (see the module docstring).

    Args:
        model: a :class:`~taskgraph.TaskGraphModel` (its mode is restored afterwards).
        loader: batches ``(x, Y)`` / ``(x, {task: target})`` / ``{"x": ..., "y": ...}``;
            ``x`` is moved to the model's device.
        samples: Monte-Carlo samples per example (0: expected synapse weights).
        threshold: binary / multilabel decision threshold, also for hierarchical P/R/F1.
        roots: binary tasks left out of the hierarchy metrics (default: the hierarchy's
            roots; pass e.g. ``["root"]`` or the GO roots for the HMC protocol, ``[]`` to
            evaluate all). Per-task metrics still cover them.
        data_name: what ``loader`` holds, in words (e.g. ``"test.csv"`` or ``"train.csv
            (the training data: no --val given)"``), stored as ``Report.data_name`` and
            shown in the report's header.

    Returns:
        A :class:`~taskgraph.metrics.Report`.

    Raises:
        DataError: an empty loader, a batch without targets, a bad target, or a bad
            ``samples`` / ``threshold`` / ``roots`` / ``data_name``.

    Example:
        >>> import torch, taskgraph as tg
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> model = tg.compile("hierarchies/cell_functions.yaml", in_features=5, task_dim=4)
        >>> Y = torch.randint(0, 2, (40, 7)).float()
        >>> loader = DataLoader(TensorDataset(torch.randn(40, 5), Y), batch_size=16)
        >>> report = evaluate(model, loader, samples=4)
        >>> report.tasks["glycolysis"]["n"], sorted(report.hierarchy)[:3]
        (40, ['auprc_bar', 'binary_tasks', 'coherence_violation_rate'])
    """
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 0:
        raise DataError(f"evaluate: samples: expected an integer >= 0, got {samples!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not 0.0 <= threshold <= 1.0:
        raise DataError(f"evaluate: threshold: expected a number in [0, 1], got {threshold!r}")
    if data_name is not None and not isinstance(data_name, str):
        raise DataError(f"evaluate: data_name: expected a string or None, got {data_name!r}")
    layout = model.layout
    excluded = _roots(model.hierarchy, roots)
    gathered = _gather(model, loader, samples)
    tasks: dict[str, dict[str, Any]] = {}
    single_class: list[str] = []  # binary tasks with one class among their labels
    for g, group in enumerate(layout.groups):
        data = gathered[g]
        if group.kind == "binary":
            scored, single = _binary(group.names, data["probs"], data["target"][..., 0],
                                     threshold)
            tasks.update(scored)
            single_class += single
        elif group.kind == "multiclass":
            tasks.update(_multiclass(group.names, data["probs"], data["target"][..., 0],
                                     data["label"]))
        elif group.kind == "multilabel":
            tasks.update(_multilabel(group.names, data["probs"], data["target"], threshold))
        else:
            tasks.update(_regression(group.names, data["probs"], data["target"]))
        if samples > 0 and group.kind != "regression":
            for j, name in enumerate(group.names):
                tasks[name]["entropy"] = float(np.mean(data["entropy"][j]))
                tasks[name]["mutual_info"] = float(np.mean(data["mutual_info"][j]))
    tasks = {name: {"type": tasks[name]["type"], "n": tasks[name]["n"],
                    "score": _primary(tasks[name]), **tasks[name]} for name in layout.names}
    single = set(single_class)
    single_class = [name for name in layout.names if name in single]  # hierarchy order
    for name in single_class:
        tasks[name]["score"] = None  # AP undefined, whatever the predictions
    scores = [m["score"] for m in tasks.values() if m["score"] is not None]
    hierarchy = {}
    if layout.binary_group is not None and len(layout.groups[layout.binary_group].names) >= 2:
        data = gathered[layout.binary_group]
        hierarchy = _hierarchy_metrics(layout, data["probs"], data["target"][..., 0],
                                       excluded, threshold)
    n_examples = gathered[0]["probs"].shape[0]
    return Report(tasks=tasks, hierarchy=hierarchy,
                  overall=float(np.mean(scores)) if scores else None,
                  samples=samples, n_examples=n_examples, threshold=float(threshold),
                  single_class=single_class, data_name=data_name)


# -- collecting predictions --------------------------------------------------------------
def _roots(hierarchy: Any, roots: Iterable[str] | None) -> tuple[str, ...]:
    if roots is None:
        return tuple(hierarchy.roots)
    names = (roots,) if isinstance(roots, str) else tuple(roots)
    for name in names:
        if not isinstance(name, str) or name not in hierarchy.tasks:
            raise DataError(f"evaluate: roots: unknown task {name!r}"
                            f"{suggest(str(name), hierarchy.task_names)}")
    return names


def _to_device(x: Any, device: torch.device) -> Any:
    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, Mapping):
        return {k: _to_device(v, device) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_to_device(v, device) for v in x)
    return x


def _gather(model: Any, loader: Iterable[Any], samples: int) -> list[dict[str, np.ndarray]]:
    """Per head group: probabilities / values, targets, labels, uncertainty means."""
    device = next(model.parameters(), torch.empty(0)).device
    layout = model.layout
    parts: list[dict[str, list]] = [{"probs": [], "target": [], "label": []}
                                    for _ in layout.groups]
    uncertainty = [{"entropy": 0.0, "mutual_info": 0.0} for _ in layout.groups]
    batches = 0
    for batch in loader:
        x, targets = split_batch(batch)
        if targets is None:
            raise DataError(f"evaluate: batch {batches} has no targets; evaluation needs "
                            f"(x, targets) batches")
        pred = model.predict(_to_device(x, device), samples=samples)
        B = pred.blocks[0]["mean"].shape[0]
        target = target_blocks(layout, targets, B, _CPU)
        for g, group in enumerate(layout.groups):
            block = pred.blocks[g]
            if not bool(torch.isfinite(block["mean"]).all()):
                raise TaskGraphError(f"evaluate: the model's predictions for task(s) "
                                     f"{', '.join(group.names[:3])} are not finite (NaN or "
                                     "inf): the model has diverged; retrain it with a lower "
                                     "learning rate")
            parts[g]["probs"].append(block["mean"].float().cpu())
            parts[g]["target"].append(target[g])
            if group.kind == "multiclass":
                parts[g]["label"].append(block["label"].cpu())
            if samples > 0 and group.kind != "regression":
                uncertainty[g]["entropy"] += block["entropy"].double().sum(0).cpu().numpy()
                uncertainty[g]["mutual_info"] += block["mi"].double().sum(0).cpu().numpy()
        batches += 1
    if batches == 0:
        raise DataError("evaluate: the loader yielded no batches; nothing to evaluate")
    out = []
    for g in range(len(layout.groups)):
        data = {k: torch.cat(v).numpy() for k, v in parts[g].items() if v}
        n = data["probs"].shape[0]
        data.update({k: np.asarray(v) / max(n, 1) for k, v in uncertainty[g].items()})
        out.append(data)
    return out


# -- per-task metrics --------------------------------------------------------------------
def _none(value: Any) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _check_labels(name: str, y: np.ndarray, known: np.ndarray, allowed: str,
                  bad: np.ndarray) -> None:
    if bad.any():
        where = np.argwhere(bad)[0]
        raise DataError(f"targets for task {name!r}: expected {allowed}, got "
                        f"{float(y[tuple(where)]):g} (example {int(where[0])})")


def _known_class(y: np.ndarray) -> np.ndarray:
    return ~np.isnan(y) & (y != -1)


def _binary(names: tuple[str, ...], P: np.ndarray, Y: np.ndarray,
            threshold: float) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """All binary tasks at once: P, Y are (N, T). Also the names of the tasks whose
    labelled examples all have one class."""
    known = _known_class(Y)
    bad = known & (Y != 0) & (Y != 1)
    if bad.any():
        j = int(np.argwhere(bad)[0][1])
        _check_labels(names[j], Y[:, j], known[:, j], "0, 1, or -1 / NaN for missing",
                      bad[:, j])
    y = np.where(known, Y, 0).astype(np.int64)
    P = P.astype(np.float64)
    pred = (P >= threshold) & known  # missing entries become true negatives: F1 unchanged
    n = known.sum(0)
    positives = y.sum(0)
    if len(names) == 1:
        f1 = np.array([f1_score(y[:, 0], pred[:, 0], zero_division=0)])
    else:
        f1 = f1_score(y, pred.astype(np.int64), average=None, zero_division=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = ((pred == (y == 1)) & known).sum(0) / n
    auroc, ap = _ranking_columns(y, P, known, (positives > 0) & (positives < n))
    calib = binary_calibration_columns(y, P, known)
    out = {}
    for j, name in enumerate(names):
        labelled = n[j] > 0
        out[name] = {"type": "binary", "n": int(n[j]),
                     "accuracy": _none(accuracy[j]) if labelled else None,
                     "f1": float(f1[j]) if labelled else None,
                     "auroc": _none(auroc[j]), "average_precision": _none(ap[j]),
                     "ece": _none(calib["ece"][j]), "nll": _none(calib["nll"][j]),
                     "brier": _none(calib["brier"][j])}
    single = [names[j] for j in np.flatnonzero((n > 0) & ((positives == 0) | (positives == n)))]
    return out, single


def _ranking_columns(y: np.ndarray, P: np.ndarray, known: np.ndarray,
                     both: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUROC and average precision of each column over its known rows (NaN unless ``both``).

    The values of ``roc_auc_score`` and ``average_precision_score`` (a tied pair counts
    1/2 in AUROC; tied scores are one threshold in AP), from one sort of each
    ``(N, chunk)`` block instead of a call per column: scikit-learn checks its input on
    each call, which takes seconds for thousands of labels. Known rows sort first
    (descending score), missing ones last, so they never reach a threshold.
    """
    T, N = y.shape[1], y.shape[0]
    auroc, ap = np.full(T, np.nan), np.full(T, np.nan)
    cols = np.flatnonzero(both)
    step = max(1, (1 << 21) // max(N, 1))
    row = np.arange(N)[:, None]  # (N, 1)
    for c in np.array_split(cols, max(1, -(-cols.size // step))) if cols.size else []:
        k = known[:, c]
        key = np.where(k, -P[:, c], np.inf)  # (N, C): ascending key = descending score
        order = np.argsort(key, axis=0, kind="stable")
        s = np.take_along_axis(key, order, 0)
        pos = np.take_along_axis((y[:, c] == 1) & k, order, 0)
        neg = np.take_along_axis((y[:, c] == 0) & k, order, 0)
        first = np.ones_like(pos)
        first[1:] = s[1:] != s[:-1]  # first row of a run of tied scores
        last = np.ones_like(pos)
        last[:-1] = first[1:]  # last row of a run
        start = np.maximum.accumulate(np.where(first, row, 0), axis=0)
        end = np.minimum.accumulate(np.where(last, row, N - 1)[::-1], axis=0)[::-1]
        tp, fp = np.cumsum(pos, 0), np.cumsum(neg, 0)  # (N, C)
        before = np.maximum(start - 1, 0)
        tp_before = np.where(start > 0, np.take_along_axis(tp, before, 0), 0)
        fp_before = np.where(start > 0, np.take_along_axis(fp, before, 0), 0)
        n_pos, n_neg = tp[-1], fp[-1]
        # AP: at each threshold (end of a run), the recall gained times the precision there
        gained = np.where(last & (pos | neg), (tp - tp_before) * tp / (row + 1.0), 0.0)
        ap[c] = gained.sum(0) / n_pos
        # AUROC: each positive beats the negatives below its run and half of those tied
        beaten = n_neg - 0.5 * (np.take_along_axis(fp, end, 0) + fp_before)
        auroc[c] = np.where(pos, beaten, 0.0).sum(0) / (n_pos * n_neg)
    return auroc, ap


def _multiclass(names: tuple[str, ...], P: np.ndarray, Y: np.ndarray,
                labels: np.ndarray) -> dict[str, dict[str, Any]]:
    """P: (N, T, K) probabilities, Y: (N, T) class indices, labels: (N, T) predictions."""
    K = P.shape[-1]
    classes = np.arange(K)
    out = {}
    for j, name in enumerate(names):
        y = Y[:, j]
        known = _known_class(y)
        _check_labels(name, y, known, f"a class index in 0..{K - 1}, or -1 / NaN for missing",
                      known & ((y < 0) | (y >= K) | (y != np.round(y))))
        metrics: dict[str, Any] = {"type": "multiclass", "n": int(known.sum())}
        keys = ["accuracy", "f1_macro", "f1_weighted"] + (["top3_accuracy"] if K > 3 else [])
        keys += ["ece", "nll", "brier"]
        metrics.update(dict.fromkeys(keys))
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
    return out


def _multilabel(names: tuple[str, ...], P: np.ndarray, Y: np.ndarray,
                threshold: float) -> dict[str, dict[str, Any]]:
    """P, Y: (N, T, K); micro scores pool the labelled (example, label) entries."""
    out = {}
    for j, name in enumerate(names):
        y, p = Y[:, j], P[:, j].astype(np.float64)
        known = _known_class(y)
        _check_labels(name, y, known, "0, 1, or -1 / NaN for missing",
                      known & (y != 0) & (y != 1))
        metrics: dict[str, Any] = {"type": "multilabel", "n": int(known.any(1).sum())}
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
            pred = ((p >= threshold) & known).astype(np.int64)  # missing: true negatives
            per_label = (f1_score(y0, pred, average=None, zero_division=0) if y.shape[1] > 1
                         else np.array([f1_score(y0[:, 0], pred[:, 0], zero_division=0)]))
            metrics["f1_macro"] = float(per_label[known.any(0)].mean())
            if 0 < yk.sum() < yk.size:
                metrics["average_precision"] = float(average_precision_score(yk, pk))
        out[name] = metrics
    return out


def _regression(names: tuple[str, ...], P: np.ndarray,
                Y: np.ndarray) -> dict[str, dict[str, Any]]:
    """P, Y: (N, T, k); with k outputs, each metric is the mean over outputs."""
    out = {}
    for j, name in enumerate(names):
        y, p = Y[:, j].astype(np.float64), P[:, j].astype(np.float64)
        _check_labels(name, y, ~np.isnan(y), "a finite value, or NaN for missing", np.isinf(y))
        known = ~np.isnan(y)
        mse, mae, r2 = [], [], []
        for o in range(y.shape[1]):
            rows = known[:, o]
            if rows.any():
                mse.append(mean_squared_error(y[rows, o], p[rows, o]))
                mae.append(mean_absolute_error(y[rows, o], p[rows, o]))
            if rows.sum() >= 2:
                r2.append(r2_score(y[rows, o], p[rows, o]))
        out[name] = {"type": "regression", "n": int(known.any(1).sum()),
                     "mse": float(np.mean(mse)) if mse else None,
                     "mae": float(np.mean(mae)) if mae else None,
                     "r2": float(np.mean(r2)) if r2 else None}
    return out


def _primary(metrics: dict[str, Any]) -> float | None:
    kind = metrics["type"]
    if kind == "binary":
        return metrics["average_precision"]  # None with a single class: AP is undefined
    if kind == "multiclass":
        return metrics["accuracy"]
    if kind == "multilabel":
        return metrics["f1_micro"]
    r2 = metrics["r2"]
    return None if r2 is None else float(np.clip(r2, -1.0, 1.0))


def _hierarchy_metrics(layout: Any, P: np.ndarray, Y: np.ndarray, excluded: tuple[str, ...],
                       threshold: float) -> dict[str, Any]:
    """Label-hierarchy metrics over the binary tasks (P, Y: (N, T_b))."""
    names = layout.groups[layout.binary_group].names
    local = {name: j for j, name in enumerate(names)}
    exclude = sorted(local[n] for n in set(excluded) if n in local)
    edges = layout.binary_edge_index.t().cpu().numpy()  # (E_b, 2) positions in the group
    Y = np.where(_known_class(Y), Y, np.nan)
    prf = hierarchical_prf(Y, P, edges, threshold=threshold, exclude=exclude)
    return {"h_precision": prf["precision"], "h_recall": prf["recall"], "h_f1": prf["f1"],
            "auprc_bar": auprc_bar(Y, P, exclude=exclude),
            "coherence_violation_rate": coherence_violation_rate(P, edges),
            "binary_tasks": len(names), "evaluated_tasks": len(names) - len(exclude),
            "edges": int(edges.shape[0]), "excluded": [names[j] for j in exclude]}
