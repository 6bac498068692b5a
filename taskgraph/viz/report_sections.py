"""The sections of the HTML report: metrics, calibration and selective prediction,
synapses. A large hierarchy (more than :data:`~taskgraph.viz.style.LARGE` tasks) gets
summaries a person can read: per-level tables, the worst-calibrated and the most
uncertain tasks, reliability diagrams per level, the outlying synapses.

Each function returns HTML text; figures are inline PNG (:mod:`taskgraph.viz.html_parts`).

Example:
    >>> page = metrics_section({"overall": 0.5, "tasks": {"a": {"type": "binary", "n": 3,
    ...                         "score": 0.5}}, "levels": [{"level": 0, "type": "binary",
    ...                         "tasks": 1, "score": 0.5, "ece": 0.1}]})
    >>> 'id="levels-table"' in page, 'id="metrics-table"' in page
    (True, True)
"""

from __future__ import annotations

import html
from typing import Any, Mapping

from taskgraph.errors import DataError
from taskgraph.viz.html_parts import img, num, png, table
from taskgraph.viz.style import LARGE

__all__ = ["metrics_section", "levels_section", "top_tasks_section", "calibration_section",
           "synapse_section", "TOP"]

#: Rows of the worst-calibrated / most uncertain / outlying-synapse tables.
TOP = 10

_SHOWN = {"binary": ("accuracy", "f1", "auroc", "average_precision"),
          "multiclass": ("accuracy", "f1_macro", "top3_accuracy"),
          "multilabel": ("f1_micro", "f1_macro", "average_precision"),
          "regression": ("mse", "mae", "r2")}
_LEVEL_COLUMNS = [("score", "score"), ("nll", "NLL"), ("brier", "Brier"), ("ece", "ECE"),
                  ("ece_adaptive", "ECE (equal mass)"), ("aurc", "AURC"),
                  ("error_auroc_entropy", "error AUROC (entropy)"),
                  ("error_auroc_mutual_info", "error AUROC (MI)"),
                  ("error_auroc_std", "error AUROC (std)")]


def _kind(kind: str) -> str:
    return f'<span class="t-{html.escape(kind)}">{html.escape(kind)}</span>'


def levels_section(levels: list[Mapping[str, Any]]) -> str:
    """The per (level, task type) table of ``report["levels"]``: task counts and the
    mean of each measure over the level's tasks (columns absent from every row are
    left out)."""
    cols = [(k, t) for k, t in _LEVEL_COLUMNS if any(k in row for row in levels)]
    rows = [[num(row.get("level")), _kind(str(row.get("type", ""))), num(row.get("tasks"))]
            + [num(row.get(k), 4 if k in ("aurc", "nll", "brier") else 3) for k, _ in cols]
            for row in levels]
    headers = [("level", True), ("type", False), ("tasks", True)] + [(t, True) for _, t in cols]
    return ("<h3>Per hierarchy level</h3><p class=\"note\">Each measure is the mean over the "
            "level's tasks of that type (a task's level: the longest path from a root). "
            "AURC: area under the risk–coverage curve (lower is better); error AUROC: how "
            "well an uncertainty score ranks wrong predictions above right ones (0.5: "
            "chance).</p>" + table(headers, rows, "levels-table"))


def top_tasks_section(tasks: Mapping[str, Mapping[str, Any]], depths: Mapping[str, int],
                      top: int = TOP) -> str:
    """The ``top`` worst-calibrated tasks (highest ECE) and the ``top`` most uncertain
    (highest mean predictive entropy), where the report has those measures."""
    out = []
    level = (lambda t: num(depths.get(t))) if depths else (lambda t: "–")
    calibrated = sorted((t for t, m in tasks.items() if m.get("ece") is not None),
                        key=lambda t: -tasks[t]["ece"])[:top]
    if calibrated:
        rows = [[html.escape(t), level(t), _kind(str(tasks[t].get("type", ""))),
                 num(tasks[t].get("n")), num(tasks[t]["ece"]),
                 num(tasks[t].get("ece_adaptive")), num(tasks[t].get("nll"), 4),
                 num(tasks[t].get("brier"), 4)] for t in calibrated]
        out += [f"<h3>The {len(rows)} worst-calibrated tasks</h3>",
                table([("task", False), ("level", True), ("type", False), ("n", True),
                       ("ECE", True), ("ECE (equal mass)", True), ("NLL", True),
                       ("Brier", True)], rows, "worst-calibrated-table")]
    uncertain = sorted((t for t, m in tasks.items() if m.get("entropy") is not None),
                       key=lambda t: -tasks[t]["entropy"])[:top]
    if uncertain:
        rows = [[html.escape(t), level(t), _kind(str(tasks[t].get("type", ""))),
                 num(tasks[t].get("n")), num(tasks[t]["entropy"]),
                 num(tasks[t].get("mutual_info"), 4), num(tasks[t].get("error_auroc_entropy")),
                 num(tasks[t].get("aurc"), 4)] for t in uncertain]
        out += [f"<h3>The {len(rows)} most uncertain tasks</h3>",
                '<p class="note">Mean predictive entropy (nats) over all examples; MI: '
                "mutual information (with Monte-Carlo samples).</p>",
                table([("task", False), ("level", True), ("type", False), ("n", True),
                       ("entropy", True), ("MI", True), ("error AUROC (entropy)", True),
                       ("AURC", True)], rows, "most-uncertain-table")]
    return "\n".join(out)


def metrics_section(data: Mapping[str, Any], depths: Mapping[str, int] | None = None) -> str:
    """Overall score, per-level table and top-task tables (when the report has them),
    the per-task table, score bars and hierarchy metrics."""
    from taskgraph.viz.plots import SCORE_NAME, plot_metrics

    tasks = data["tasks"]
    out = [f'<p>overall score <b>{num(data.get("overall"))}</b> (mean of the per-task '
           f'primary scores) on {num(data.get("n_examples"))} examples, '
           f'{num(data.get("samples"))} Monte-Carlo samples'
           + (f' ({html.escape(str(data["draws"]))})' if data.get("draws") else "")
           + '. Primary score: '
           + "; ".join(f"{k}: {v}" for k, v in SCORE_NAME.items()) + ".</p>"]
    if data.get("levels"):
        out.append(levels_section(data["levels"]))
    if len(tasks) > TOP:
        out.append(top_tasks_section(tasks, depths or {}))
    rows = []
    for name, m in tasks.items():
        kind = str(m.get("type", ""))
        shown = ", ".join(f"{k} {num(m[k])}" for k in _SHOWN.get(kind, ()) if k in m)
        rows.append([html.escape(name), _kind(kind), num(m.get("n")), num(m.get("score")),
                     shown, num(m.get("ece"))])
    out += [f"<h3>All {len(tasks):,} tasks</h3>" if len(tasks) > TOP else "",
            table([("task", False), ("type", False), ("n", True), ("score", True),
                   ("metrics", False), ("ECE", True)], rows, "metrics-table")]
    if any(isinstance(m.get("score"), (int, float)) for m in tasks.values()):
        out.append(img(png(plot_metrics, data), "per-task scores"))
    if data.get("hierarchy"):
        hrows = [[html.escape(k), num(v) if not isinstance(v, list) else
                  html.escape(", ".join(map(str, v[:10])))] for k, v in data["hierarchy"].items()]
        out += ["<h3>Hierarchy metrics</h3>",
                table([("metric", False), ("value", True)], hrows, "hierarchy-table")]
    return "\n".join(part for part in out if part)


def calibration_section(model: Any, data: Any, report: Mapping[str, Any] | None,
                        samples: int) -> str:
    """Reliability diagrams and risk–coverage curves from ``data`` (with a model), else
    the report's per-task calibration table."""
    if model is not None and data is not None:
        from taskgraph.viz.reliability import plot_reliability
        from taskgraph.viz.risk_coverage import plot_risk_coverage

        large = len(model.hierarchy.task_names) > LARGE
        try:
            out = [img(png(plot_reliability, model, data, samples=samples),
                       "reliability diagrams",
                       "Reliability diagrams on the given data (15 bins), "
                       + ("the events of each hierarchy level pooled; " if large else "")
                       + "ECE in each panel title. Only panels with enough data are drawn.")]
        except DataError as err:
            out = [f'<p class="note">No reliability diagram: {html.escape(str(err))}</p>']
        out += ["<h3>Risk–coverage</h3>",
                img(png(plot_risk_coverage, model, data, samples=samples),
                    "risk-coverage curves",
                    "Answering only the most certain predictions (lowest predictive "
                    "entropy): the error rate of those answered, the events of each "
                    "hierarchy level pooled (the per-level table's AURC is the mean of "
                    "the per-task AURCs).")]
        return "\n".join(out)
    rows = [[html.escape(n), html.escape(str(m.get("type", ""))), num(m.get("ece")),
             num(m.get("nll")), num(m.get("brier"))]
            for n, m in (report or {}).get("tasks", {}).items() if m.get("ece") is not None]
    if not rows:
        return '<p class="note">No calibration data: the report has no ECE values.</p>'
    return ('<p class="note">No labelled data was given for reliability diagrams; the '
            "per-task calibration from report.json:</p>"
            + table([("task", False), ("type", False), ("ECE", True), ("NLL", True),
                     ("Brier", True)], rows, "calibration-table"))


def synapse_section(model: Any) -> str:
    """Synapses: every synapse in a table (small hierarchies) or the ones that differ
    most from the rest (large), their sampled distributions, and task-embedding
    similarity (a heatmap, or per level for large hierarchies)."""
    from taskgraph.viz.model_plots import plot_synapses, plot_weight_sharing
    from taskgraph.viz.synapse_outliers import plot_synapse_outliers, synapse_outliers

    rows = model.synapses()
    large = len(model.hierarchy.task_names) > LARGE
    out = []
    headers = [("parent", False), ("child", False), ("direction", False), ("kind", False),
               ("mean", True), ("std", True), ("p", True)]
    if rows and large:
        top = synapse_outliers(rows, top=15)
        body = [[html.escape(str(r["parent"])), html.escape(str(r["child"])), r["direction"],
                 r["kind"], num(r["mean"], 4), num(r["std"], 4), num(r["p"], 4),
                 html.escape(r["statistic"]), num(r["z"], 1)] for r in top]
        out += ["<h3>The synapses that differ most from the rest</h3>",
                f'<p class="note">{len(top)} of {len(rows):,} synapses, by robust z-score '
                "of |E[w]|, std or p against the other synapses of the same direction "
                "((value − median) / (1.4826 · MAD)); <code>model.synapses()</code> lists "
                "them all.</p>",
                table(headers + [("statistic", False), ("z", True)], body,
                      "synapse-outliers-table")]
        if top:
            out.append(img(png(plot_synapse_outliers, rows, rows=top), "outlying synapses"))
    elif rows:
        body = [[html.escape(str(r["parent"])), html.escape(str(r["child"])), r["direction"],
                 r["kind"], num(r["mean"]), num(r["std"]), num(r["p"])] for r in rows]
        out.append(table(headers, body, "synapse-table"))
    if rows:
        out.append(img(png(plot_synapses, model), "sampled synapse weights",
                       "Sampled synapse weights (1,000 draws per synapse)."))
    else:
        out.append('<p class="note">This model has no edge synapses.</p>')
    if large:
        out.append(img(png(plot_weight_sharing, model), "task-embedding similarity",
                       "Cosine similarity of the learned task embeddings: parent and child "
                       "beside random pairs, per level of the child."))
    else:
        out.append(img(png(plot_weight_sharing, model), "task-embedding similarity",
                       "Cosine similarity of the learned task embeddings, depth-first "
                       "order."))
    return "\n".join(out)
