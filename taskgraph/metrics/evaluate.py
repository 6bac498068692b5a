"""`evaluate`: run a model over a loader and score every task, its calibration and the
label hierarchy.

Each task is scored by its type's scorer (:mod:`taskgraph.metrics.task_scores`, which
lists the metrics and defines errors and uncertainty scores) over the examples that
carry its label (missing: NaN, or ``-1`` for class tasks). Classification tasks also get
the calibration and selective-prediction measures (``nll``, ``brier``, ``ece``,
``ece_adaptive``, ``aurc``, ``error_auroc_entropy``) and ``entropy``, the mean
predictive entropy (nats) over all examples, labelled or not. With ``samples > 0``
probabilities are the Monte-Carlo means, and classification tasks also get
``mutual_info`` (its mean, likewise) and the error-detection AUROC of the per-example
mutual information and std (``error_auroc_mutual_info``, ``error_auroc_std``).
``Report.levels`` averages the measures per hierarchy level (a task's depth: the
longest path from a root, roots at level 0) and task type. Each task's
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
from taskgraph.metrics.report import Report, level_rows
from taskgraph.metrics.task_scores import SCORERS, uncertainty_scores
from taskgraph.model.batches import GroupPredictions, predict_loader
from taskgraph.vocabulary import suggest

__all__ = ["evaluate"]


def evaluate(model: Any, loader: Iterable[Any], *, samples: int = 0, threshold: float = 0.5,
             roots: Iterable[str] | None = None, data_name: str | None = None,
             dropout: bool | None = None) -> Report:
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
        dropout: what the ``samples`` are: ``True`` MC dropout, ``False`` synapse draws,
            ``None`` (default) MC dropout where the model has dropout; see
            :func:`~taskgraph.model.predict.predict`.

    Returns:
        A :class:`~taskgraph.metrics.Report`.

    Raises:
        DataError: an empty loader, a batch without targets, or a bad target.
        ArgumentError: a bad ``samples``, ``threshold``, ``roots`` or ``data_name``, or
            ``dropout=True`` with ``samples=0`` or a model without dropout.

    Example:
        >>> import torch, taskgraph as tg
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> model = tg.compile("hierarchies/cell_functions.yaml", in_features=5, task_dim=4)
        >>> Y = torch.randint(0, 2, (40, 7)).float()
        >>> loader = DataLoader(TensorDataset(torch.randn(40, 5), Y), batch_size=16)
        >>> report = evaluate(model, loader, samples=4)
        >>> report.tasks["glycolysis"]["n"], sorted(report.hierarchy)[:3]
        (40, ['auprc_bar', 'binary_tasks', 'coherence_violation_rate'])
        >>> [(row["level"], row["tasks"]) for row in report.levels]
        [(0, 2), (1, 3), (2, 2)]
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
    if dropout is not None and not isinstance(dropout, bool):
        raise ArgumentError(f"evaluate: dropout: expected True, False or None, got "
                            f"{dropout!r}")
    layout = model.layout
    excluded = _roots(model.hierarchy, roots)
    gathered = predict_loader(model, loader, samples=samples, who="evaluate", dropout=dropout)
    sampled = [None if g.mutual_info_examples is None else
               {"mutual_info": g.mutual_info_examples, "std": g.std_examples}
               for g in gathered]
    tasks: dict[str, dict[str, Any]] = {}
    single: set[str] = set()  # binary tasks with one class among their labels
    for pred, extra in zip(gathered, sampled):
        scorer = SCORERS[pred.group.kind]
        scored, unscored = scorer.score(pred, threshold)
        tasks.update(scored)
        single.update(unscored)
        events = scorer.events(pred, threshold, extra)
        if events is not None:
            for name, metrics in uncertainty_scores(events, pred.group.names).items():
                tasks[name].update(metrics)
        if pred.mutual_info is not None:
            for j, name in enumerate(pred.group.names):
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
                  data_name=data_name, levels=level_rows(tasks, model.hierarchy.depths),
                  draws=_draws(model, samples, dropout))


def _draws(model: Any, samples: int, dropout: bool | None) -> str | None:
    """What :func:`evaluate`'s samples were, for the report."""
    from taskgraph.model.ensemble import Ensemble
    from taskgraph.model.predict import uses_dropout

    if samples == 0:
        return None
    first = model.members[0] if isinstance(model, Ensemble) else model
    return "MC dropout" if uses_dropout(first, samples, dropout) else "synapses"


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
