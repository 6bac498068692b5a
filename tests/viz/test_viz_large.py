"""Pictures of large hierarchies: the screen-wide overview, robust colour scales, the
outlying synapses, reliability panels that show data, and risk–coverage curves."""

from __future__ import annotations

from types import SimpleNamespace

import networkx as nx
import numpy as np
import pytest
from PIL import Image
from viz_helpers import ROOT, tree_hierarchy

import taskgraph as tg
from taskgraph.errors import ArgumentError, DataError
from taskgraph.viz import draw, overview_view, reliability as reliability_module
from taskgraph.viz.labels import Measure
from taskgraph.viz.layout import assign_layers
from taskgraph.viz.overview import GAP, MAX_WIDTH_PX
from taskgraph.viz.risk_coverage import prediction_events, risk_coverage_curves
from taskgraph.viz.scales import RobustRange, robust_z
from taskgraph.viz.shapes import SynapseScale
from taskgraph.viz.synapse_outliers import synapse_outliers


@pytest.fixture(scope="module")
def funcat():
    """The FunCat hierarchy of cellcycle_FUN: 499 tasks under 18 roots (a forest)."""
    from taskgraph.datasets.hmc import load_hmc

    return load_hmc("cellcycle_FUN").hierarchy


def _inside(drawing) -> None:
    """Every label inside its own box, and no two labels overlapping."""
    from matplotlib.transforms import Bbox

    fig = drawing.figure
    renderer = fig.canvas.get_renderer()
    boxes = []
    for node, texts in drawing.labels.items():
        ext = Bbox.union([t.get_window_extent(renderer) for t in texts])
        x, y, w, h = drawing.boxes[node]
        assert x - w / 2 - 0.01 <= ext.x0 / fig.dpi and ext.x1 / fig.dpi <= x + w / 2 + 0.01
        assert y - h / 2 - 0.01 <= ext.y0 / fig.dpi and ext.y1 / fig.dpi <= y + h / 2 + 0.01
        boxes.append((node, ext))
    for i, (a, ea) in enumerate(boxes):
        for b, eb in boxes[i + 1:]:
            assert not ea.overlaps(eb), (a, b)


# ------------------------------------------------------------------ the overview drawing


def test_the_funcat_overview_fits_a_screen_with_every_root(funcat, tmp_path):
    out = tmp_path / "funcat.png"
    drawing = draw(funcat, out, max_nodes=120)
    view = drawing.view
    assert view.graph["overview"] and view.graph["total"] == 499 == len(funcat)
    with Image.open(out) as image:
        (width, height), dpi = image.size, image.info["dpi"]
    assert width <= MAX_WIDTH_PX and height < 1200  # the old collapsed view: 4,319 x 937
    assert set(funcat.roots) <= set(view)  # all 18 top-level categories are there
    assert 30 <= len(view) <= 120
    # the task names are 8.5 pt at 120 dpi: 14 pixels tall, as a screen shows text
    names = [texts[0] for texts in drawing.labels.values()]
    assert {t.get_fontsize() for t in names} == {8.5}
    assert dpi == pytest.approx((120, 120), abs=0.05)  # PNG stores pixels per metre
    _inside(drawing)
    # a forest: every undrawn task is counted once, under its nearest drawn ancestor
    shown = set(view)
    for node in view:
        below = nx.descendants(funcat.graph, node) - shown
        reached = {d for d in below
                   if not (nx.ancestors(funcat.graph, d) & (shown - {node})
                           - nx.ancestors(funcat.graph, node))}
        assert view.nodes[node].get("hidden", 0) == len(reached), node
    assert sum(view.nodes[n].get("hidden", 0) for n in view) == 499 - len(shown)


def test_each_overview_layer_fits_the_width_budget(tmp_path):
    h = tree_hierarchy(2000, seed=1, window=300)
    drawing = draw(h, tmp_path / "tree.png", max_nodes=80)
    assert drawing.view.graph["overview"]
    with Image.open(tmp_path / "tree.png") as image:
        assert image.size[0] <= MAX_WIDTH_PX
    fig_w = drawing.figure.get_size_inches()[0]
    for node, (x, _, w, _) in drawing.boxes.items():  # nothing outside the picture
        assert 0 <= x - w / 2 and x + w / 2 <= fig_w, node
    _inside(drawing)
    measure = Measure()
    sizes = []
    for budget in (6.0, 9.0):  # t0's 11 children need about 7 inches
        view = overview_view(h, width=budget, measure=measure, max_nodes=150)
        layers: dict[int, list] = {}
        for node, layer in assign_layers(view).items():
            layers.setdefault(layer, []).append(node)
        for nodes in layers.values():
            widths = [measure.width(n, None, hidden=view.nodes[n].get("hidden", 0))
                      for n in nodes]
            assert sum(widths) + GAP * (len(nodes) - 1) <= budget + 1e-9
        sizes.append(len(view))
    assert sizes == [1, 150]  # the root alone (+1,999 below it), then max_nodes boxes


def test_small_hierarchies_keep_the_whole_drawing(tmp_path):
    h = tg.load_hierarchy(ROOT / "hierarchies" / "animals.yaml")
    drawing = draw(h, tmp_path / "animals.png")
    assert not drawing.view.graph.get("overview") and set(drawing.view) == set(h.task_names)
    collapsed = draw(tree_hierarchy(300), tmp_path / "c.png", overview=False, max_nodes=50)
    assert collapsed.view.graph["collapsed"] and not collapsed.view.graph.get("overview")
    with pytest.raises(tg.viz.DrawingError, match="depth"):
        draw(h, tmp_path / "x.png", overview=True, depth=1)


def test_the_overview_dot_file_writes_the_hidden_counts(tmp_path):
    h = tree_hierarchy(400, seed=2)
    draw(h, tmp_path / "t.dot")
    text = (tmp_path / "t.dot").read_text(encoding="utf-8")
    view = overview_view(h)
    for node in view:
        if view.nodes[node].get("hidden"):
            assert f'"{node}\\n+{view.nodes[node]["hidden"]:,}"' in text


# ------------------------------------------------------------------ robust scales


def test_the_colour_scale_spans_the_2nd_to_98th_percentile_of_the_means():
    rng = np.random.default_rng(0)
    means = np.r_[rng.normal(0.976, 0.002, 500), [0.2, 3.0]]  # two outliers
    rows = [{"kind": "gaussian", "mean": float(m), "std": 0.1, "p": 1.0} for m in means]
    scale = SynapseScale(rows)
    lo, hi = np.percentile(means, [2, 98])
    assert (scale.vmin, scale.vmax) == pytest.approx((lo, hi), rel=0, abs=1e-12)
    norm = scale.norm()
    assert norm(lo) == pytest.approx(0.0) and norm(hi) == pytest.approx(1.0)
    assert norm(3.0) == 1.0 and norm(0.2) == 0.0  # clipped, not stretching the scale
    mags = np.abs(means)
    m_lo, m_hi = np.percentile(mags, [2, 98])
    assert scale.width(m_lo) == pytest.approx(0.6) and scale.width(m_hi) == pytest.approx(3.2)
    assert scale.width(np.median(mags)) == pytest.approx(
        0.6 + 2.6 * (np.median(mags) - m_lo) / (m_hi - m_lo))
    both = SynapseScale([{"kind": "fixed", "mean": v, "std": 0.0, "p": 1.0}
                         for v in np.linspace(-1.0, 2.0, 101)])
    assert both.diverging and both.norm()(0.0) == pytest.approx(0.5)
    assert (both.vmin, both.vmax) == pytest.approx(tuple(np.percentile(
        np.linspace(-1.0, 2.0, 101), [2, 98])))


def test_the_drawn_colour_bar_is_the_percentile_range_of_the_edges_drawn(funcat, tmp_path):
    import torch

    torch.manual_seed(0)
    model = tg.compile(funcat, in_features=5, task_dim=4)
    with torch.no_grad():  # means spread like a trained model's: a narrow band
        model.edge_synapses.mu.copy_(0.976 + 0.002 * torch.randn_like(model.edge_synapses.mu))
    drawing = draw(model, tmp_path / "m.png")
    drawn = [s["mean"] for _, _, syn in drawing.view.edges(data="synapse") if syn
             for d, s in syn.items() if d == "down"]
    (bar,) = drawing.figure.axes[0].child_axes
    assert sorted(bar.get_xlim()) == pytest.approx(np.percentile(drawn, [2, 98]))
    ticks = [float(t.get_text().replace("−", "-")) for t in bar.get_xticklabels()]
    assert ticks == pytest.approx(list(np.percentile(drawn, [2, 98])), abs=5e-4)  # printed


def test_robust_range_and_z_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    r = RobustRange(x)
    assert (r.low, r.high) == pytest.approx(tuple(np.percentile(x, [2, 98])))
    assert r.fraction(r.low) == 0.0 and r.fraction(1e9) == 1.0
    # median 3, |x - 3| = 2, 1, 0, 1, 97: MAD 1
    assert robust_z(x) == pytest.approx((x - 3.0) / 1.4826)
    # MAD 0 (more than half equal): mean |x - median| * sqrt(pi / 2) stands in
    y = np.array([5.0, 5.0, 5.0, 7.0])
    assert robust_z(y) == pytest.approx((y - 5.0) / (0.5 * np.sqrt(np.pi / 2)))
    assert robust_z([4.0, 4.0]).tolist() == [0.0, 0.0]
    with pytest.raises(ArgumentError, match="quantiles"):
        RobustRange(x, quantiles=(50, 10))


def test_the_outlying_synapses_are_found_by_hand():
    rng = np.random.default_rng(1)
    rows = [{"parent": "r", "child": f"c{i}", "direction": d, "kind": "gaussian",
             "mean": float(1.0 + rng.normal(0, 0.001)), "std": float(0.1 + rng.normal(0, 1e-4)),
             "p": 1.0} for d in ("down", "up") for i in range(40)]
    rows[7]["std"] = 0.13           # down c7: a much noisier synapse
    rows[40 + 3]["mean"] = 0.9      # up c3: a weaker one
    top = synapse_outliers(rows, top=2)
    assert [(r["child"], r["direction"], r["statistic"]) for r in top] == [
        ("c7", "down", "std"), ("c3", "up", "|E[w]|")]
    std_down = np.array([r["std"] for r in rows[:40]])
    med = np.median(std_down)
    mad = np.median(np.abs(std_down - med))
    assert top[0]["z"] == pytest.approx((0.13 - med) / (1.4826 * mad))
    assert top[0]["median"] == pytest.approx(med) and top[0]["others"] == 40
    with pytest.raises(ArgumentError, match="top"):
        synapse_outliers(rows, top=0)


# ------------------------------------------------------------------ reliability panels


def test_no_reliability_panel_is_empty(monkeypatch):
    h = tree_hierarchy(90, seed=4, window=10)  # > 60 tasks: panels per level
    depths = h.depths
    rng = np.random.default_rng(0)
    events = {}
    for t in h.task_names:
        if depths[t] <= 1:  # confidences spread, outcomes follow them
            conf = rng.uniform(0, 1, 200)
            events[t] = ((rng.uniform(0, 1, 200) < conf).astype(float), conf)
        else:  # a rare label predicted near 0: bars flat on the axis
            conf = rng.uniform(0.0, 0.05, 200)
            events[t] = ((rng.uniform(0, 1, 200) < 0.01).astype(float), conf)
    monkeypatch.setattr(reliability_module, "reliability_data", lambda *a, **kw: events)
    model = SimpleNamespace(hierarchy=h)
    panels, left_out = reliability_module.reliability_panels(model, [])
    levels = sorted({depths[t] for t in h.task_names})
    assert [p.label for p in panels] == ["level 0 · binary", "level 1 · binary"]
    assert left_out == len(levels) - 2
    for p in panels:  # what has_data promises, counted with numpy
        count, _ = np.histogram(p.confidence, bins=np.linspace(0, 1, 16))
        pos, _ = np.histogram(p.confidence, bins=np.linspace(0, 1, 16), weights=p.outcome)
        filled = count >= 5
        assert filled.sum() >= 2 and (pos[filled] / count[filled] >= 0.1).any()
        tasks = [t for t in h.task_names if depths[t] == int(p.label.split()[1])]
        assert p.tasks == len(tasks) and p.outcome.size == 200 * len(tasks)
    figures = []
    monkeypatch.setattr(reliability_module, "save",
                        lambda fig, path, **kw: figures.append(fig) or path)
    reliability_module.plot_reliability(model, [], "unused.png")
    drawn = [ax for ax in figures[0].axes if ax.get_visible()]
    assert len(drawn) == len(panels)
    for ax in drawn:  # every panel has a bar a tenth of it high
        bars = ax.containers[0]
        assert max(r.get_height() for r in bars) >= 0.1
    assert f"{left_out} panels without enough data left out" in figures[0].get_suptitle()


def test_reliability_refuses_when_no_panel_has_data(monkeypatch):
    h = tree_hierarchy(3)
    flat = {t: (np.zeros(50), np.full(50, 0.01)) for t in h.task_names}
    monkeypatch.setattr(reliability_module, "reliability_data", lambda *a, **kw: flat)
    with pytest.raises(DataError, match="enough data"):
        reliability_module.reliability_panels(SimpleNamespace(hierarchy=h), [])
    with pytest.raises(ArgumentError, match="by"):
        reliability_module.reliability_panels(SimpleNamespace(hierarchy=h), [], by="tasks")


# ------------------------------------------------------------------ risk–coverage


def test_prediction_events_by_hand():
    from taskgraph.model.task_types import TASK_TYPES

    e, u = prediction_events(TASK_TYPES["binary"], np.array([0.9, 0.4, 0.5, 0.2]),
                             np.array([[1.0], [1.0], [0.0], [np.nan]]))
    assert e.tolist() == [0.0, 1.0, 1.0]  # 0.5 >= 0.5 says "yes": wrong for a 0
    h = lambda p: -(p * np.log(p) + (1 - p) * np.log(1 - p))  # noqa: E731
    assert u == pytest.approx([h(0.9), h(0.4), h(0.5)])
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]])
    e, u = prediction_events(TASK_TYPES["multiclass"], probs, np.array([[0.], [0.], [-1.]]))
    assert e.tolist() == [0.0, 1.0]
    assert u == pytest.approx([-(probs[i] * np.log(probs[i])).sum() for i in (0, 1)])


def test_risk_coverage_curves_pool_each_level(tmp_path):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from taskgraph.model.batches import predict_loader

    torch.manual_seed(0)
    model = tg.compile(ROOT / "hierarchies" / "cell_functions.yaml", in_features=5,
                       task_dim=4)
    Y = torch.randint(0, 2, (80, 7)).float()
    Y[::7, 2] = float("nan")  # some missing labels
    loader = DataLoader(TensorDataset(torch.randn(80, 5), Y), batch_size=32)
    curves = risk_coverage_curves(model, loader)
    (pred,) = predict_loader(model, loader)
    P, T = pred.mean, pred.target[..., 0]  # (N, 7) each
    depths = model.hierarchy.depths
    for c in curves:
        cols = [j for j, n in enumerate(pred.group.names) if depths[n] == c.level]
        known = ~np.isnan(T[:, cols])
        err = ((P[:, cols] >= 0.5) != T[:, cols])[known].astype(float)
        p = P[:, cols][known]
        ent = -(p * np.log(p) + (1 - p) * np.log(1 - p))
        order = np.argsort(ent, kind="stable")  # continuous: no ties
        risk = np.cumsum(err[order]) / np.arange(1, err.size + 1)
        assert c.tasks == len(cols) and c.errors.size == known.sum()
        assert c.aurc == pytest.approx(risk.mean()) and c.error_rate == pytest.approx(err.mean())
    from taskgraph.viz import plot_risk_coverage

    out = plot_risk_coverage(model, loader, tmp_path / "rc.png", curves=curves)
    with Image.open(out) as image:
        assert image.size[0] > 800


# ------------------------------------------------------------------ the command line


def test_the_draw_command_says_what_the_overview_left_out(capsys, tmp_path):
    from taskgraph.cli.main import main

    path = tmp_path / "tree.yaml"
    tree_hierarchy(300, seed=6).to_yaml(path)
    assert main(["draw", str(path), "-o", str(tmp_path / "o.png")]) == 0
    out = capsys.readouterr().out
    view = overview_view(tree_hierarchy(300, seed=6))
    assert f"{view.graph['shown']} tasks; overview of the top levels of 300 tasks" in out
    assert f"{300 - view.graph['shown']} not drawn" in out
    assert main(["draw", str(path), "-o", str(tmp_path / "c.png"), "--no-overview",
                 "--max-nodes", "40"]) == 0
    assert "collapsed view" in capsys.readouterr().out
