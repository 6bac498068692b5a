"""`evaluate`: run a model over a loader and score every task, its calibration and the
label hierarchy.

Each task is scored by its type's scorer (:mod:`taskgraph.metrics.task_scores`, which
lists the metrics) over the examples that carry its label (missing: NaN, or ``-1`` for
class tasks). With ``samples > 0`` probabilities are the Monte-Carlo means and
classification tasks also get ``entropy`` and ``mutual_info``: the mean predictive
entropy and mutual information (nats) over all examples, labelled or not. Each task's
``score`` is its primary metric (:data:`~taskgraph.metrics.report.PRIMARY`); the report's
``overall`` is their mean. A binary task whose labelled examples all have one class has
no score (its AP is undefined; an accuracy in its place would count "always predict the
one class" as perfect): it is listed in ``Report.single_class`` and left out of
``overall``. The binary tasks of a hierarchy with at least two of them also get the
label-hierarchy metrics (:mod:`taskgraph.metrics.hierarchical`).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from taskgraph.errors import ArgumentError
from taskgraph.metrics.hierarchical import auprc_bar, coherence_violation_rate, hierarchical_prf
from taskgraph.metrics.report import Report
from taskgraph.metrics.task_scores import SCORERS
from taskgraph.model.batches import GroupPredictions, predict_loader
from taskgraph.vocabulary import suggest

__all__ = ["evaluate"]


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
        DataError: an empty loader, a batch without targets, or a bad target.
        ArgumentError: a bad ``samples``, ``threshold``, ``roots`` or ``data_name``.

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
        raise ArgumentError(f"evaluate: samples: expected an integer >= 0, got {samples!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not 0.0 <= threshold <= 1.0:
        raise ArgumentError(f"evaluate: threshold: expected a number in [0, 1], got "
                            f"{threshold!r}")
    if data_name is not None and not isinstance(data_name, str):
        raise ArgumentError(f"evaluate: data_name: expected a string or None, got "
                            f"{data_name!r}")
    layout = model.layout
    excluded = _roots(model.hierarchy, roots)
    gathered = predict_loader(model, loader, samples=samples, who="evaluate")
    tasks: dict[str, dict[str, Any]] = {}
    single: set[str] = set()  # binary tasks with one class among their labels
    for pred in gathered:
        scored, unscored = SCORERS[pred.group.kind].score(pred, threshold)
        tasks.update(scored)
        single.update(unscored)
        if pred.entropy is not None:
            for j, name in enumerate(pred.group.names):
                tasks[name]["entropy"] = float(np.mean(pred.entropy[j]))
                tasks[name]["mutual_info"] = float(np.mean(pred.mutual_info[j]))
    primary = {name: SCORERS[model.hierarchy[name].type].primary(tasks[name])
               for name in layout.names}
    tasks = {name: {"type": tasks[name]["type"], "n": tasks[name]["n"],
                    "score": None if name in single else primary[name], **tasks[name]}
             for name in layout.names}  # a single-class task's AP is undefined: no score
    scores = [m["score"] for m in tasks.values() if m["score"] is not None]
    hierarchy = {}
    if layout.binary_group is not None and len(layout.groups[layout.binary_group].names) >= 2:
        hierarchy = _hierarchy_metrics(layout, gathered[layout.binary_group], excluded,
                                       threshold)
    return Report(tasks=tasks, hierarchy=hierarchy,
                  overall=float(np.mean(scores)) if scores else None,
                  samples=samples, n_examples=gathered[0].mean.shape[0],
                  threshold=float(threshold),
                  single_class=[name for name in layout.names if name in single],
                  data_name=data_name)


def _roots(hierarchy: Any, roots: Iterable[str] | None) -> tuple[str, ...]:
    if roots is None:
        return tuple(hierarchy.roots)
    names = (roots,) if isinstance(roots, str) else tuple(roots)
    for name in names:
        if not isinstance(name, str) or name not in hierarchy.tasks:
            raise ArgumentError(f"evaluate: roots: unknown task {name!r}"
                                f"{suggest(str(name), hierarchy.task_names)}")
    return names


def _hierarchy_metrics(layout: Any, pred: GroupPredictions, excluded: tuple[str, ...],
                       threshold: float) -> dict[str, Any]:
    """Label-hierarchy metrics over the binary tasks (P, Y: (N, T_b))."""
    names = pred.group.names
    local = {name: j for j, name in enumerate(names)}
    exclude = sorted(local[n] for n in set(excluded) if n in local)
    edges = layout.binary_edge_index.t().cpu().numpy()  # (E_b, 2) positions in the group
    Y = pred.target[..., 0]
    Y = np.where(pred.group.task_type.known(Y), Y, np.nan)
    P = pred.mean
    prf = hierarchical_prf(Y, P, edges, threshold=threshold, exclude=exclude)
    return {"h_precision": prf["precision"], "h_recall": prf["recall"], "h_f1": prf["f1"],
            "auprc_bar": auprc_bar(Y, P, exclude=exclude),
            "coherence_violation_rate": coherence_violation_rate(P, edges),
            "binary_tasks": len(names), "evaluated_tasks": len(names) - len(exclude),
            "edges": int(edges.shape[0]), "excluded": [names[j] for j in exclude]}
