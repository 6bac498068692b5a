"""What the pictures show, read back from the output: every task and edge in the DOT and
SVG files and in the figure, the ``+N tasks`` counts, the colour bar's range, the bars of
a reliability diagram. Expected values come from the hierarchy and the data drawn."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import networkx as nx
import numpy as np
import pytest

import taskgraph as tg
from taskgraph.viz import Collapsed, draw
from taskgraph.viz import reliability as reliability_module

SVG = "{http://www.w3.org/2000/svg}"
NODE = re.compile(r'^\s*("(?:[^"\\]|\\.)*") \[label=("(?:[^"\\]|\\.)*")', re.M)
EDGE = re.compile(r'^\s*("(?:[^"\\]|\\.)*") -> ("(?:[^"\\]|\\.)*")(?: \[(.*)\])?;$', re.M)


def unquote(text: str) -> str:
    """The string of a DOT double-quoted token."""
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text[1:-1])


def parse_dot(text: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """``({node id: label}, [(from id, to id, attributes)])`` of a DOT file."""
    nodes = {unquote(i): unquote(label) for i, label in NODE.findall(text)}
    edges = [(unquote(a), unquote(b), attrs) for a, b, attrs in EDGE.findall(text)]
    return nodes, edges


def svg_texts(path) -> list[str]:
    """Every line of text of an SVG file, in document order: the content of <text>
    elements, or the comment matplotlib writes before text it draws as glyph paths."""
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    root = ET.parse(path, parser).getroot()
    out = []
    for element in root.iter():
        if element.tag is ET.Comment:
            out.append(element.text.strip())
        elif element.tag == f"{SVG}text":
            out.append("".join(element.itertext()))
    return out


def hidden_count(label: str) -> int:
    match = re.fullmatch(r"\+([\d,]+) tasks?", label)
    assert match, label
    return int(match.group(1).replace(",", ""))


# ------------------------------------------------------------------ DOT and SVG text


@pytest.mark.parametrize("name", ["cell_functions", "animals", "sentiment"])
def test_dot_has_every_task_and_every_edge_of_the_hierarchy(name, tmp_path):
    h = tg.load_hierarchy(f"hierarchies/{name}.yaml")
    draw(h, tmp_path / "g.dot")
    nodes, edges = parse_dot((tmp_path / "g.dot").read_text(encoding="utf-8"))
    assert sorted(nodes) == sorted(h.task_names)
    for task in h.task_names:  # each label starts with the task's own name
        assert nodes[task].split("\n")[0] == task
    assert sorted((a, b) for a, b, _ in edges) == sorted(h.graph.edges)


def test_svg_shows_every_task_name(tmp_path):
    # Names longer than a line are wrapped into several <text> elements: a task is shown
    # when consecutive text elements spell its name.
    h = tg.load_hierarchy("hierarchies/cell_functions.yaml")
    draw(h, tmp_path / "g.svg")
    texts = svg_texts(tmp_path / "g.svg")
    joined = ["".join(texts[i:j]) for i in range(len(texts))
              for j in range(i + 1, min(i + 4, len(texts)) + 1)]
    for task in h.task_names:
        assert task in joined, f"{task!r} is not written in the SVG: {texts}"
    assert h.name in texts  # the title
    # as text a reader can select and search, not as glyph outlines
    root = ET.parse(tmp_path / "g.svg").getroot()
    assert h.name in ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert f"{len(h)} tasks · {h.graph.number_of_edges()} edges" in texts


def test_collapsed_boxes_in_the_dot_file_add_up_to_the_hidden_tasks(big, tmp_path):
    draw(big, tmp_path / "big.dot", max_nodes=120, overview=False)
    nodes, edges = parse_dot((tmp_path / "big.dot").read_text(encoding="utf-8"))
    tasks = {n for n in nodes if not n.startswith("+collapsed:")}
    boxes = {n: hidden_count(label) for n, label in nodes.items() if n not in tasks}
    assert tasks <= set(big.task_names) and boxes and len(nodes) <= 120
    assert sum(boxes.values()) == len(big) - len(tasks)  # a tree: the boxes do not overlap
    parent_of = {b: a for a, b, _ in edges if b in boxes}
    assert set(parent_of) == set(boxes)  # every box hangs below a drawn task
    for box, hidden in boxes.items():  # ... and counts that task's undrawn descendants
        assert hidden == len(nx.descendants(big.graph, parent_of[box]) - tasks)
    drawn = {(a, b) for a, b, _ in edges if b in tasks}
    assert drawn == {(a, b) for a, b in big.graph.edges if a in tasks and b in tasks}


def test_model_dot_has_one_arrow_per_synapse_with_its_kind(run, tmp_path):
    draw(run.model, tmp_path / "m.dot", directions="both")
    _, edges = parse_dot((tmp_path / "m.dot").read_text(encoding="utf-8"))
    rows = run.model.synapses()
    drawn = sorted((a, b, "up" if "dir=back" in attrs else "down", "style=dashed" in attrs)
                   for a, b, attrs in edges)
    assert drawn == sorted((r["parent"], r["child"], r["direction"], r["kind"] == "bernoulli")
                           for r in rows)
    # the width grows with |mean|; the strongest synapse gets the widest arrow
    width = {(a, b, "up" if "dir=back" in attrs else "down"):
             float(re.search(r"penwidth=([\d.]+)", attrs).group(1)) for a, b, attrs in edges}
    by_mean = sorted(rows, key=lambda r: abs(r["mean"]))
    widths = [width[r["parent"], r["child"], r["direction"]] for r in by_mean]
    assert widths == sorted(widths) and widths[-1] == max(width.values())


# ------------------------------------------------------------------ the matplotlib figure


def _edge_ends(drawing) -> list[tuple[object, object, object]]:
    """``(from node, to node, line)`` of every arrow drawn in the figure.

    An arrow is a line (a PathPatch without fill) and a triangle whose tip touches a
    box; the line starts on the side of another box.
    """
    from matplotlib.patches import PathPatch, Polygon

    ax = drawing.figure.axes[0]
    lines = [p for p in ax.patches if isinstance(p, PathPatch)]
    heads = [p for p in ax.patches if isinstance(p, Polygon) and len(p.get_xy()) in (3, 4)
             and p.get_facecolor()[3] > 0 and p.get_edgecolor()[3] == 0]

    def box_at(x, y):
        hits = [n for n, (bx, by, w, h) in drawing.boxes.items()
                if abs(x - bx) <= w / 2 + 1e-6 and min(abs(y - (by + h / 2)),
                                                       abs(y - (by - h / 2))) < 1e-6]
        assert len(hits) == 1, (x, y, hits)
        return hits[0]

    out = []
    for line in lines:
        verts = line.get_path().vertices
        start, end = verts[0], verts[-1]
        tips = [h for h in heads if abs(h.get_xy()[0][0] - end[0]) < 1e-9
                and abs(h.get_xy()[0][1] - end[1]) < 0.2]
        assert len(tips) == 1, "one arrowhead at the end of every line"
        tip = tips[0].get_xy()[0]
        out.append((box_at(*start), box_at(*tip), line))
    return out


def test_every_edge_is_drawn_from_its_parent_box_to_its_child_box(tmp_path):
    h = tg.load_hierarchy("hierarchies/cell_functions.yaml")
    drawing = draw(h, tmp_path / "g.png")
    ends = sorted((a, b) for a, b, _ in _edge_ends(drawing))
    assert ends == sorted(h.graph.edges)
    for task, (x, y, w, hgt) in drawing.boxes.items():  # parents above their children
        for child in h.children(task):
            assert drawing.boxes[child][1] < y


def test_model_arrows_point_down_and_up_with_dashed_bernoulli_lines(run, tmp_path):
    drawing = draw(run.model, tmp_path / "m.png", directions="both")
    rows = {(r["parent"], r["child"], r["direction"]): r for r in run.model.synapses()}
    seen = []
    for a, b, line in _edge_ends(drawing):
        key = (a, b, "down") if (a, b) in run.hierarchy.graph.edges else (b, a, "up")
        seen.append(key)
        dashed = line.get_linestyle() not in ("-", "solid")
        assert dashed == (rows[key]["kind"] == "bernoulli"), key
    assert sorted(seen) == sorted(rows)


def test_legend_colour_bar_spans_the_synapse_means_drawn(run, tmp_path):
    for directions in ("down", "both"):
        drawing = draw(run.model, tmp_path / f"{directions}.png", directions=directions)
        means = [r["mean"] for r in run.model.synapses()
                 if directions == "both" or r["direction"] == directions]
        (bar,) = drawing.figure.axes[0].child_axes
        # the 2nd and 98th percentile of the means drawn (numpy's linear interpolation)
        assert sorted(bar.get_xlim()) == pytest.approx(np.percentile(means, [2, 98]))


def test_collapsed_figure_writes_the_hidden_counts(big, tmp_path):
    drawing = draw(big, tmp_path / "big.svg", max_nodes=120, overview=False)
    boxes = [n for n in drawing.view if isinstance(n, Collapsed)]
    texts = svg_texts(tmp_path / "big.svg")
    counts = [hidden_count(t) for t in texts if t.startswith("+") and t.endswith(("task", "tasks"))]
    tasks = [n for n in drawing.view if not isinstance(n, Collapsed)]
    assert len(counts) == len(boxes) > 0
    assert sum(counts) == len(big) - len(tasks)


# ------------------------------------------------------------------ reliability diagram


def test_reliability_bars_are_the_accuracy_of_each_bin(monkeypatch):
    # Hand-made (outcome, confidence) events stand in for a model's predictions.
    h = tg.load_hierarchy({"taskgraph": 1, "name": "hand", "tasks": {
        "a": {"type": "binary"},
        "b": {"type": "multiclass", "classes": ["x", "y", "z"], "parents": ["a"]}}})
    # binary a: 4 at 0.05 (1 positive), 2 at 0.55 (1), 4 at 0.95 (3)
    # multiclass b, top-label events: confidence 0.7 twice (right once), 0.62 once (right)
    events = {"a": (np.array([0, 0, 0, 1, 1, 0, 1, 1, 1, 0.0]),
                    np.array([0.05] * 4 + [0.55] * 2 + [0.95] * 4)),
              "b": (np.array([1, 0, 1.0]), np.array([0.7, 0.7, 0.62]))}
    model = SimpleNamespace(hierarchy=h)
    monkeypatch.setattr(reliability_module, "reliability_data", lambda *a, **kw: events)
    figures = []
    monkeypatch.setattr(reliability_module, "save",
                        lambda fig, path, **kw: figures.append(fig) or path)
    reliability_module.plot_reliability(model, [], "unused.png", n_bins=15)
    (fig,) = figures
    panels = {ax.get_title(loc="left").split(" · ")[0]: ax for ax in fig.axes
              if ax.get_visible() and ax.get_title(loc="left")}
    assert set(panels) == {"a", "b"}
    # by hand, 15 bins of width 1/15: 0.05 -> bin 0, 0.55 -> 8, 0.62 -> 9, 0.7 -> 10, 0.95 -> 14
    expected = {"a": {0: (0.25, 0.05), 8: (0.5, 0.55), 14: (0.75, 0.95)},
                "b": {9: (1.0, 0.62), 10: (0.5, 0.7)}}
    ece = {"a": (4 * 0.2 + 2 * 0.05 + 4 * 0.2) / 10, "b": (0.38 + 2 * 0.2) / 3}
    for task, ax in panels.items():
        bars, gaps = ax.containers[:2]
        want = expected[task]
        assert [round(r.get_x() * 15) for r in bars] == sorted(want)
        for r in bars:
            assert r.get_width() == pytest.approx(1 / 15)
        assert [r.get_height() for r in bars] == pytest.approx([a for a, _ in want.values()],
                                                               abs=1e-9)
        for r, (acc, conf) in zip(gaps, want.values()):  # the shaded gap to the confidence
            assert r.get_y() == pytest.approx(min(acc, conf), abs=1e-9)
            assert r.get_height() == pytest.approx(abs(acc - conf), abs=1e-9)
        assert ax.get_title(loc="left") == f"{task} · ECE {ece[task]:.3f}"
        n = len(events[task][0])
        assert f"{h[task].type}, n={n}" in [t.get_text() for t in ax.texts]
