"""`write_report`: one self-contained HTML page about a training run.

The page has the task graph with the learned synapses, the metrics (per hierarchy
level, the worst-calibrated and most uncertain tasks, every task, score bars;
``report.json``), the training curves (``history.json``), calibration and selective
prediction (reliability diagrams and risk–coverage curves when labelled data is given,
else the per-task ECE table of the report) and the synapses. A large hierarchy (more
than :data:`~taskgraph.viz.style.LARGE` tasks) is summarized: an overview drawing of its
top levels, reliability pooled per level, the synapses that differ most from the rest
instead of a table of all of them, embedding similarity per level instead of a T × T
heatmap. A ``report.json`` written before the per-level measures existed still renders.
Images are PNG embedded as ``data:`` URIs and the CSS is inline: no scripts, no
external links, so the file can be mailed or archived alone.

Example:
    >>> import os, tempfile, taskgraph as tg
    >>> run = tempfile.mkdtemp()
    >>> model = tg.compile("hierarchies/animals.yaml", in_features=4, task_dim=4)
    >>> tg.save(model, os.path.join(run, "model.pt"))
    >>> page = write_report(run)
    >>> os.path.basename(page), "<img" in open(page, encoding="utf-8").read()
    ('report.html', True)
"""

from __future__ import annotations

import datetime
import html
import os
import tempfile
from typing import Any

from taskgraph.atomic import write_text_atomic
from taskgraph.errors import CheckpointError, DataError
from taskgraph.viz.html_parts import CSS, img, num, png
from taskgraph.viz.report_sections import calibration_section, metrics_section, \
    synapse_section

__all__ = ["write_report"]


def _load_run(run: str | None, model: Any, history: Any, report: Any) -> tuple:
    import taskgraph as tg

    notes: list[str] = []
    hierarchy = None
    if run is not None:
        if not os.path.isdir(run):
            raise FileNotFoundError(2, "No such directory", run)
        pt, hist = os.path.join(run, "model.pt"), os.path.join(run, "history.json")
        rep, yml = os.path.join(run, "report.json"), os.path.join(run, "hierarchy.yaml")
        if model is None and os.path.exists(pt):
            try:
                model = tg.load(pt)
            except CheckpointError as err:
                notes.append(f"model.pt not shown: {err}")
        history = history if history is not None or not os.path.exists(hist) else hist
        report = report if report is not None or not os.path.exists(rep) else rep
        if model is None and os.path.exists(yml):
            hierarchy = tg.load_hierarchy(yml)
    if model is not None:
        hierarchy = model.hierarchy
    if model is None and history is None and report is None and hierarchy is None:
        raise DataError(f"{run or 'write_report'}: nothing to report: expected model.pt, "
                        "history.json, report.json or hierarchy.yaml")
    return model, history, report, hierarchy, notes


def write_report(run: str | os.PathLike | None = None, path: str | os.PathLike | None = None,
                 *, model: Any = None, history: Any = None, report: Any = None,
                 data: Any = None, samples: int = 0, title: str | None = None) -> str:
    """Write one self-contained HTML page about a run.

    Args:
        run: a folder written by ``taskgraph train`` or ``taskgraph demo`` (``model.pt``,
            ``history.json``, ``report.json``, ``hierarchy.yaml``; any may be missing).
        path: the HTML file (default: ``RUN/report.html``).
        model, history, report: objects to use instead of (or without) the run's files.
        data: labelled batches (a loader) for reliability diagrams and risk–coverage
            curves; without it the calibration section shows the report's per-task
            ECE table.
        samples: Monte-Carlo samples for those figures.
        title: the page title (default: the hierarchy's name).

    Returns:
        The path written.

    Raises:
        DataError: nothing to report, or unusable history / report files.
        FileNotFoundError: ``run`` does not exist.
    """
    import taskgraph as tg
    from taskgraph.viz.graph import draw
    from taskgraph.viz.plots import load_history, load_report, plot_training_curves

    run = os.fspath(run) if run is not None else None
    if path is None:
        if run is None:
            raise DataError("write_report: give a run folder or an output path")
        path = os.path.join(run, "report.html")
    path = os.fspath(path)
    model, history, report, hierarchy, notes = _load_run(run, model, history, report)
    report_data = load_report(report) if report is not None else None
    records = load_history(history) if history is not None else None
    name = title or (hierarchy.name if hierarchy is not None else "taskgraph run")
    facts = []
    if hierarchy is not None:
        facts += [("hierarchy", html.escape(hierarchy.name)), ("tasks", num(len(hierarchy))),
                  ("edges", num(hierarchy.graph.number_of_edges()))]
    if model is not None:
        c = model.config
        facts += [("model", f"task_dim {c.task_dim}, {c.rounds} rounds, directions "
                            f"{html.escape('/'.join(c.directions))}, synapse "
                            f"{html.escape(c.synapse.kind)}")]
    if records:
        facts.append(("epochs", num(len(records))))
    if report_data is not None:
        facts.append(("overall score", num(report_data.get("overall"))))
    parts = [f"<h1>{html.escape(name)}</h1>", '<p class="sub">taskgraph run report'
             + (f" · {html.escape(run)}" if run else "") + "</p>",
             '<dl class="summary">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
             + "</dl>"]
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in notes]
    if hierarchy is not None:
        with tempfile.TemporaryDirectory() as tmp:
            picture = os.path.join(tmp, "graph.png")
            drawing = draw(model if model is not None else hierarchy, picture, title=name)
            with open(picture, "rb") as fh:
                graph_png = fh.read()
        caption = ("Edges: learned synapses (colour: E[w]; width: |E[w]|; opacity: "
                   "certainty; each scale spans the 2nd to 98th percentile of the synapses "
                   "drawn)." if model is not None else "The task hierarchy.")
        g = drawing.view.graph
        if g.get("overview"):
            caption += (f" Large hierarchy: an overview of the top levels ({g['shown']:,} "
                        f"of {g['total']:,} tasks); +N under a task counts its undrawn "
                        "descendants; 'taskgraph draw --root TASK' draws a subtree.")
        elif g.get("collapsed"):
            caption += (" Large hierarchy: the top levels, cut-off subtrees as '+N tasks' "
                        "(scroll sideways).")
        parts += ["<h2>Task graph</h2>", img(graph_png, "task graph", caption,
                                             scroll=not g.get("overview"))]
    if report_data is not None:
        depths = hierarchy.depths if hierarchy is not None else None
        parts += ["<h2>Metrics</h2>", metrics_section(report_data, depths)]
    if records:
        parts += ["<h2>Training</h2>",
                  img(png(plot_training_curves, {"epochs": records}), "training curves")]
    parts += ["<h2>Calibration</h2>", calibration_section(model, data, report_data, samples)]
    if model is not None:
        parts += ["<h2>Synapses</h2>", synapse_section(model)]
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts.append(f"<footer>taskgraph {html.escape(tg.__version__)} · {stamp}</footer>")
    page = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(name)} · taskgraph report</title>\n"
            f"<style>{CSS}</style>\n</head>\n<body>\n<main>\n" + "\n".join(parts)
            + "\n</main>\n</body>\n</html>\n")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    write_text_atomic(path, page)
    return path
