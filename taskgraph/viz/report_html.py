"""`write_report`: one self-contained HTML page about a training run.

The page has the task graph with the learned synapses, the metrics table and score
bars (``report.json``), the training curves (``history.json``), calibration (reliability
diagrams when labelled data is given, else the per-task ECE table of the report) and
the synapse table with their sampled distributions. Images are PNG embedded as
``data:`` URIs and the CSS is inline: no scripts, no external links, so the file can be
mailed or archived alone.

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

import base64
import datetime
import html
import io
import math
import os
import tempfile
from typing import Any, Iterable

from taskgraph.atomic import write_text_atomic
from taskgraph.errors import CheckpointError, DataError

__all__ = ["write_report", "MAX_SYNAPSE_ROWS"]

MAX_SYNAPSE_ROWS = 500

_CSS = """
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;color:#222;margin:0;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:24px 32px 48px;background:#fff}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:19px;margin:36px 0 8px;
border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:15px;margin:20px 0 6px}
p.sub{color:#666;margin:0 0 16px}.note{color:#666;font-size:13px}
dl.summary{display:grid;grid-template-columns:max-content auto;gap:3px 18px;font-size:14px}
dl.summary dt{color:#666}dl.summary dd{margin:0}
figure{margin:12px 0}figure img{max-width:100%;height:auto;border:0}
.hscroll{overflow-x:auto}.hscroll img{max-width:none}
figcaption{color:#666;font-size:13px;margin-top:4px}
.scroll{max-height:560px;overflow:auto;border:1px solid #e5e5e5}
table{border-collapse:collapse;font-size:13px;width:100%}
th,td{padding:4px 8px;text-align:left;border-bottom:1px solid #eee;white-space:nowrap}
th{background:#f3f3f3;position:sticky;top:0}td.num,th.num{text-align:right;
font-variant-numeric:tabular-nums}
.t-binary{color:#0072B2}.t-multiclass{color:#D55E00}.t-multilabel{color:#009E73}
.t-regression{color:#9C4F96}footer{margin-top:40px;color:#888;font-size:12px}
"""

_SHOWN = {"binary": ("accuracy", "f1", "auroc", "average_precision"),
          "multiclass": ("accuracy", "f1_macro", "top3_accuracy"),
          "multilabel": ("f1_micro", "f1_macro", "average_precision"),
          "regression": ("mse", "mae", "r2")}


def _num(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool) or value is None:
        return "–" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.{digits}f}" if value == 0 or 1e-3 <= abs(value) < 1e4 \
            else f"{value:.{digits}g}"
    return html.escape(str(value))


def _css_width(png: bytes) -> int | None:
    """The display width in CSS pixels of a PNG, from its size and pHYs density."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    width = int.from_bytes(png[16:20], "big")
    at = png.find(b"pHYs", 8, 4096)
    if at < 0:
        return width
    per_metre = int.from_bytes(png[at + 4:at + 8], "big")
    unit = png[at + 12]
    if unit != 1 or per_metre <= 0:
        return width
    return round(width * 120 / (per_metre * 0.0254))  # a little above print size


def _img(data: bytes, alt: str, caption: str = "", *, scroll: bool = False) -> str:
    """A ``<figure>`` with the PNG inline; ``scroll``: full size in a scrolling box."""
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    width = _css_width(data)
    size = f' width="{width}"' if width else ""
    img = f'<img src="{src}" alt="{html.escape(alt)}"{size}>'
    if scroll:
        img = f'<div class="hscroll">{img}</div>'
    return f"<figure>{img}{cap}</figure>"


def _png(plot: Any, *args: Any, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    plot(*args, buf, **kwargs)
    return buf.getvalue()


def _table(headers: list[tuple[str, bool]], rows: Iterable[list[str]], table_id: str) -> str:
    head = "".join(f'<th{" class=num" if num else ""}>{html.escape(h)}</th>'
                   for h, num in headers)
    body = "".join("<tr>" + "".join(
        f'<td{" class=num" if num else ""}>{cell}</td>' for cell, (_, num) in zip(r, headers))
        + "</tr>\n" for r in rows)
    return (f'<div class="scroll"><table id="{table_id}"><thead><tr>{head}</tr></thead>'
            f"<tbody>\n{body}</tbody></table></div>")


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


def _metrics_section(data: dict[str, Any]) -> str:
    from taskgraph.viz.plots import SCORE_NAME, plot_metrics

    tasks = data["tasks"]
    rows = []
    for name, m in tasks.items():
        kind = str(m.get("type", ""))
        shown = ", ".join(f"{k} {_num(m[k])}" for k in _SHOWN.get(kind, ()) if k in m)
        rows.append([html.escape(name), f'<span class="t-{html.escape(kind)}">'
                     f"{html.escape(kind)}</span>", _num(m.get("n")), _num(m.get("score")),
                     shown, _num(m.get("ece"))])
    out = [f'<p>overall score <b>{_num(data.get("overall"))}</b> (mean of the per-task '
           f'primary scores) on {_num(data.get("n_examples"))} examples, '
           f'{_num(data.get("samples"))} Monte-Carlo samples. Primary score: '
           + "; ".join(f"{k}: {v}" for k, v in SCORE_NAME.items()) + ".</p>"]
    out.append(_table([("task", False), ("type", False), ("n", True), ("score", True),
                       ("metrics", False), ("ECE", True)], rows, "metrics-table"))
    if any(isinstance(m.get("score"), (int, float)) for m in tasks.values()):
        out.append(_img(_png(plot_metrics, data), "per-task scores"))
    if data.get("hierarchy"):
        hrows = [[html.escape(k), _num(v) if not isinstance(v, list) else
                  html.escape(", ".join(map(str, v[:10])))] for k, v in data["hierarchy"].items()]
        out += ["<h3>Hierarchy metrics</h3>",
                _table([("metric", False), ("value", True)], hrows, "hierarchy-table")]
    return "\n".join(out)


def _calibration_section(model: Any, data: Any, report: dict | None, samples: int) -> str:
    if model is not None and data is not None:
        from taskgraph.viz.reliability import plot_reliability

        return _img(_png(plot_reliability, model, data, samples=samples),
                    "reliability diagrams", "Reliability diagrams on the given data "
                    "(15 bins); the ECE of each task is in its panel title.")
    rows = [[html.escape(n), html.escape(str(m.get("type", ""))), _num(m.get("ece")),
             _num(m.get("nll")), _num(m.get("brier"))]
            for n, m in (report or {}).get("tasks", {}).items() if m.get("ece") is not None]
    if not rows:
        return '<p class="note">No calibration data: the report has no ECE values.</p>'
    return ('<p class="note">No labelled data was given for reliability diagrams; the '
            "per-task calibration from report.json:</p>"
            + _table([("task", False), ("type", False), ("ECE", True), ("NLL", True),
                      ("Brier", True)], rows, "calibration-table"))


def _synapse_section(model: Any) -> str:
    from taskgraph.viz.model_plots import plot_synapses, plot_weight_sharing

    rows = model.synapses()
    out = []
    if rows:
        body = [[html.escape(str(r["parent"])), html.escape(str(r["child"])), r["direction"],
                 r["kind"], _num(r["mean"]), _num(r["std"]), _num(r["p"])]
                for r in rows[:MAX_SYNAPSE_ROWS]]
        out.append(_table([("parent", False), ("child", False), ("direction", False),
                           ("kind", False), ("mean", True), ("std", True), ("p", True)],
                          body, "synapse-table"))
        if len(rows) > MAX_SYNAPSE_ROWS:
            out.append(f'<p class="note">The first {MAX_SYNAPSE_ROWS} of {len(rows):,} '
                       "synapses are listed.</p>")
        out.append(_img(_png(plot_synapses, model), "sampled synapse weights",
                        "Sampled synapse weights (1,000 draws per synapse)."))
    else:
        out.append('<p class="note">This model has no edge synapses.</p>')
    out.append(_img(_png(plot_weight_sharing, model), "task-embedding similarity",
                    "Cosine similarity of the learned task embeddings, depth-first order."))
    return "\n".join(out)


def write_report(run: str | os.PathLike | None = None, path: str | os.PathLike | None = None,
                 *, model: Any = None, history: Any = None, report: Any = None,
                 data: Any = None, samples: int = 0, title: str | None = None) -> str:
    """Write one self-contained HTML page about a run.

    Args:
        run: a folder written by ``taskgraph train`` or ``taskgraph demo`` (``model.pt``,
            ``history.json``, ``report.json``, ``hierarchy.yaml``; any may be missing).
        path: the HTML file (default: ``RUN/report.html``).
        model, history, report: objects to use instead of (or without) the run's files.
        data: labelled batches (a loader) for reliability diagrams; without it the
            calibration section shows the report's per-task ECE table.
        samples: Monte-Carlo samples for the reliability diagrams.
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
        facts += [("hierarchy", html.escape(hierarchy.name)), ("tasks", _num(len(hierarchy))),
                  ("edges", _num(hierarchy.graph.number_of_edges()))]
    if model is not None:
        c = model.config
        facts += [("model", f"task_dim {c.task_dim}, {c.rounds} rounds, directions "
                            f"{html.escape('/'.join(c.directions))}, synapse "
                            f"{html.escape(c.synapse.kind)}")]
    if records:
        facts.append(("epochs", _num(len(records))))
    if report_data is not None:
        facts.append(("overall score", _num(report_data.get("overall"))))
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
        caption = ("Edges: learned synapses (colour and width: mean; opacity: certainty)."
                   if model is not None else "The task hierarchy.")
        if drawing.view.graph.get("collapsed"):
            caption += (" Large hierarchy: the top levels, cut-off subtrees as '+N tasks' "
                        "(scroll sideways).")
        parts += ["<h2>Task graph</h2>", _img(graph_png, "task graph", caption, scroll=True)]
    if report_data is not None:
        parts += ["<h2>Metrics</h2>", _metrics_section(report_data)]
    if records:
        parts += ["<h2>Training</h2>",
                  _img(_png(plot_training_curves, {"epochs": records}), "training curves")]
    parts += ["<h2>Calibration</h2>", _calibration_section(model, data, report_data, samples)]
    if model is not None:
        parts += ["<h2>Synapses</h2>", _synapse_section(model)]
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts.append(f"<footer>taskgraph {html.escape(tg.__version__)} · {stamp}</footer>")
    page = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(name)} · taskgraph report</title>\n"
            f"<style>{_CSS}</style>\n</head>\n<body>\n<main>\n" + "\n".join(parts)
            + "\n</main>\n</body>\n</html>\n")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    write_text_atomic(path, page)
    return path
