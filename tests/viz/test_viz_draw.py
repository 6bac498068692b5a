"""`draw`: files in every format, one box per task, readable labels, synapse edges."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import networkx as nx
import pytest
from viz_helpers import SHIPPED

import taskgraph as tg
from taskgraph.viz import Collapsed, DrawingError, draw, to_dot


def label_extents(drawing):
    fig = drawing.figure
    renderer = fig.canvas.get_renderer()
    return {node: [t.get_window_extent(renderer) for t in texts]
            for node, texts in drawing.labels.items()}


def assert_no_overlap(drawing):
    from matplotlib.transforms import Bbox

    extents = label_extents(drawing)
    boxes = [(node, Bbox.union(ext)) for node, ext in extents.items()]
    for i, (a, ba) in enumerate(boxes):
        for b, bb in boxes[i + 1:]:
            assert not ba.overlaps(bb), f"labels of {a!r} and {b!r} overlap"
    # each label inside its own node box (inches -> pixels)
    dpi = drawing.figure.dpi
    for node, ext in extents.items():
        x, y, w, h = drawing.boxes[node]
        for e in ext:
            assert x - w / 2 - 0.01 <= e.x0 / dpi and e.x1 / dpi <= x + w / 2 + 0.01, node
            assert y - h / 2 - 0.01 <= e.y0 / dpi and e.y1 / dpi <= y + h / 2 + 0.01, node


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_hierarchies_have_one_box_per_task_and_readable_labels(path, tmp_path):
    h = tg.load_hierarchy(path)
    drawing = draw(h, tmp_path / "graph.png")
    assert set(drawing.view) == set(h.task_names)
    assert set(drawing.labels) == set(h.task_names) == set(drawing.boxes)
    assert_no_overlap(drawing)
    for task, spec in h.tasks.items():  # class counts are shown
        texts = " ".join(t.get_text() for t in drawing.labels[task])
        if spec.type == "multiclass":
            assert f"{len(spec.classes)} classes" in texts


def test_a_wide_layer_gets_vertical_labels_that_do_not_overlap(tmp_path):
    g = nx.DiGraph([("root", f"a_rather_long_task_name_{i:03d}") for i in range(60)])
    drawing = draw(g, tmp_path / "wide.png", overview=False)  # 61 tasks: all drawn
    rotations = {t.get_rotation() for n, texts in drawing.labels.items() if n != "root"
                 for t in texts}
    assert rotations == {90.0}
    assert_no_overlap(drawing)


def test_collapsed_boxes_have_readable_labels(big, tmp_path):
    drawing = draw(big, tmp_path / "big.png", max_nodes=120, overview=False)
    assert any(isinstance(n, Collapsed) for n in drawing.view)
    assert_no_overlap(drawing)


@pytest.mark.parametrize("ext,magic", [("png", b"\x89PNG"), ("pdf", b"%PDF"),
                                       ("svg", b"<?xml"), ("dot", b"digraph")])
def test_every_format_writes_a_non_empty_file(ext, magic, tmp_path):
    out = tmp_path / f"animals.{ext}"
    drawing = draw(tg.load_hierarchy("hierarchies/animals.yaml"), out)
    data = out.read_bytes()
    assert data.startswith(magic) and len(data) > 200
    assert drawing.path == str(out)
    if ext == "svg":
        assert ET.fromstring(data).tag.endswith("svg")


def test_unknown_extension_is_refused_before_writing(tmp_path):
    with pytest.raises(DrawingError, match=r"unknown picture format \.jpg.*\.png"):
        draw(tg.load_hierarchy("hierarchies/animals.yaml"), tmp_path / "g.jpg")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kw", [{"layout": "spring"}, {"directions": "sideways"}])
def test_bad_layout_or_direction_is_refused(kw, tmp_path):
    with pytest.raises(DrawingError):
        draw(tg.load_hierarchy("hierarchies/animals.yaml"), tmp_path / "g.png", **kw)


def test_dot_output_has_one_node_line_per_task_and_every_edge(tmp_path):
    h = tg.load_hierarchy("hierarchies/cell_functions.yaml")
    out = tmp_path / "cells.dot"
    draw(h, out)
    text = out.read_text(encoding="utf-8")
    assert text.startswith('digraph "cell_functions" {') and text.rstrip().endswith("}")
    nodes = re.findall(r'^\s*"([^"]+)" \[label=', text, flags=re.M)
    assert sorted(nodes) == sorted(h.task_names)
    edges = re.findall(r'^\s*"([^"]+)" -> "([^"]+)"', text, flags=re.M)
    assert sorted(edges) == sorted(h.graph.edges)
    assert text.count("{") == text.count("}")
    for line in text.splitlines():  # every quoted string is closed
        assert len(re.sub(r'\\.', "", line).split('"')) % 2 == 1, line


def test_dot_escapes_quotes_and_marks_collapsed_boxes():
    g = nx.DiGraph([("a", 'say "hi"'), ("a", "b")])
    g.add_node(Collapsed("b", 7))
    g.add_edge("b", Collapsed("b", 7))
    text = to_dot(g)
    assert '"say \\"hi\\""' in text and "+7 tasks" in text and "style=dotted" in text


def test_model_edges_show_learned_synapses(run, tmp_path):
    drawing = draw(run.model, tmp_path / "model.png", directions="both")
    rows = run.model.synapses()
    for row in rows:
        attrs = drawing.view.edges[row["parent"], row["child"]]["synapse"][row["direction"]]
        assert attrs["mean"] == pytest.approx(row["mean"])
    texts = [t.get_text() for t in drawing.figure.axes[0].texts]
    assert "Synapses" in texts and "bernoulli (gaps grow as p falls)" in texts
    assert drawing.figure.axes[0].child_axes, "the colour bar of the synapse means"
    dot = tmp_path / "model.dot"
    draw(run.model, dot, directions="both")
    text = dot.read_text(encoding="utf-8")
    arrows = [ln for ln in text.splitlines() if " -> " in ln and "penwidth=" in ln]
    assert len(arrows) == len(rows)  # one arrow per synapse, both directions
    assert "style=dashed" in text and "dir=back" in text  # bernoulli mammal -> diet; up


def test_draw_does_not_touch_pyplot_state(tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    size = dict(matplotlib.rcParams)["font.size"]
    draw(tg.load_hierarchy("hierarchies/sentiment.yaml"), tmp_path / "s.png")
    assert matplotlib.get_backend() == backend
    assert matplotlib.rcParams["font.size"] == size
