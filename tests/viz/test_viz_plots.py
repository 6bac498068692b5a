"""Figures of a run, fed with the real History, Report and model objects."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from taskgraph.errors import DataError
from taskgraph.train import History
from taskgraph.viz import (DrawingError, model_plots, plot_metrics, plot_reliability,
                           plot_synapses, plot_training_curves, plot_weight_sharing, plots)
from taskgraph.viz.model_plots import dfs_order
from taskgraph.viz.reliability import reliability_bins, reliability_data


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        return im.size


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions make, kept instead of saved."""
    kept = []

    def keep(fig, path, **kw):
        kept.append(fig)
        return path

    monkeypatch.setattr(plots, "save", keep)
    monkeypatch.setattr(model_plots, "save", keep)
    return kept


def test_training_curves_draw_the_history_values(run, figures):
    plot_training_curves(run.history, "unused.png", tasks=["diet", "mammal"])
    (fig,) = figures
    loss_ax, task_ax = fig.axes[:2]
    lines = {line.get_label(): line for line in loss_ax.lines}
    epochs = [r["epoch"] for r in run.history.records]
    for key, label in (("loss", "train loss"), ("kl", "KL divergence (sum)"),
                       ("val_loss", "validation loss")):
        assert list(lines[label].get_xdata()) == epochs
        assert list(lines[label].get_ydata()) == pytest.approx(
            [r[key] for r in run.history.records])
    per_task = {line.get_label(): list(line.get_ydata()) for line in task_ax.lines}
    assert per_task == pytest.approx({t: [r["per_task"][t] for r in run.history.records]
                                      for t in ("diet", "mammal")})


def test_metric_bars_are_the_report_scores(run, figures):
    plot_metrics(run.report, "unused.png")
    (fig,) = figures
    ax = fig.axes[0]
    bars = [p for c in ax.containers for p in c]
    names = [t.get_text() for t in ax.get_yticklabels()]
    drawn = {names[::-1][round(b.get_y() + b.get_height() / 2)]: b.get_width() for b in bars}
    scores = {t: m["score"] for t, m in run.report.tasks.items() if m.get("score") is not None}
    assert drawn == pytest.approx(scores)
    assert names == sorted(scores, key=lambda t: -scores[t])  # best on top


def test_training_curves_from_history_object_and_json(run, tmp_path):
    a = plot_training_curves(run.history, tmp_path / "curves.png")
    b = plot_training_curves(run.folder / "history.json", tmp_path / "curves.svg",
                             tasks=["diet", "mammal"])
    w, h = png_size(a)
    assert w > h > 300
    assert (tmp_path / "curves.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")
    assert b == str(tmp_path / "curves.svg")


def test_training_curves_refuse_empty_history_and_unknown_task(run, tmp_path):
    with pytest.raises(DataError, match="at least one epoch"):
        plot_training_curves(History(), tmp_path / "c.png")
    with pytest.raises(DataError, match="'dite' has no per-task loss"):
        plot_training_curves(run.history, tmp_path / "c.png", tasks=["dite"])
    with pytest.raises(DrawingError, match="unknown picture format"):
        plot_training_curves(run.history, tmp_path / "c.gif")


def test_metrics_from_report_object_and_json(run, tmp_path):
    plot_metrics(run.report, tmp_path / "m.png")
    plot_metrics(run.folder / "report.json", tmp_path / "m2.png")
    assert png_size(tmp_path / "m.png") == png_size(tmp_path / "m2.png")
    assert png_size(tmp_path / "m.png")[1] > 200


def test_metrics_with_many_tasks_show_the_best_and_worst():
    tasks = {f"task{i:03d}": {"type": "binary", "n": 5, "score": i / 300} for i in range(300)}
    small = plot_metrics({"tasks": tasks, "overall": 0.5}, io.BytesIO(), max_tasks=20)
    big = plot_metrics({"tasks": tasks, "overall": 0.5}, io.BytesIO(), max_tasks=60)
    assert png_size(small)[1] < png_size(big)[1]  # bars are capped, height follows
    with pytest.raises(DataError, match="no task has a score"):
        plot_metrics({"tasks": {"a": {"type": "binary", "score": None}}}, io.BytesIO())


def test_the_best_and_worst_bars_keep_their_values(figures):
    # 499 tasks, 40 bars and the gap row: the values stay readable beside the bars
    tasks = {f"task{i:03d}": {"type": "binary", "n": 5, "score": i / 1000} for i in range(499)}
    plot_metrics({"tasks": tasks, "overall": 0.25}, "unused.png")
    (fig,) = figures
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "0.498" in texts and "0.000" in texts and "0.019" in texts  # best, worst
    assert sum(1 for t in texts if t.startswith("0.")) == 40
    assert any("459 more tasks" in t for t in texts)


@pytest.mark.parametrize("per", ["direction", "edge"])
def test_synapse_distributions(run, per, tmp_path):
    out = plot_synapses(run.model, tmp_path / f"syn_{per}.png", samples=200, per=per)
    assert png_size(out)[0] > 300


def test_synapse_plot_for_chosen_edges_and_errors(run):
    import torch

    state = torch.random.get_rng_state()
    plot_synapses(run.model, io.BytesIO(), per="edge", samples=50,
                  edges=[("mammal", "diet"), ("diet", "species", "up")])
    assert torch.equal(state, torch.random.get_rng_state())  # the user's RNG is untouched
    with pytest.raises(DataError, match="mammal->species is not an edge"):
        plot_synapses(run.model, io.BytesIO(), per="edge", edges=[("mammal", "species")])
    with pytest.raises(DataError, match="at most 2 edges"):
        plot_synapses(run.model, io.BytesIO(), per="edge", max_edges=2,
                      edges=[("mammal", "diet")] * 3)
    with pytest.raises(DataError, match="per:"):
        plot_synapses(run.model, io.BytesIO(), per="task")


def test_weight_sharing_orders_subtrees_together(run, tmp_path):
    assert dfs_order(run.hierarchy) == ["mammal", "diet", "species", "weight_kg"]
    out = plot_weight_sharing(run.model, tmp_path / "ws.png")
    assert png_size(out)[0] > 300


def test_weight_sharing_image_is_the_cosine_similarity(run, figures):
    import torch

    plot_weight_sharing(run.model, "unused.png")
    (image,) = figures[0].axes[0].images
    order = ["mammal", "diet", "species", "weight_kg"]  # depth-first, by hand
    emb = run.model.task_embeddings()[[run.model.layout.names.index(t) for t in order]]
    expected = torch.nn.functional.cosine_similarity(emb[:, None], emb[None], dim=-1)
    drawn = image.get_array()
    assert drawn.mask.tolist() == np.eye(4, dtype=bool).tolist()  # the diagonal is grey
    off = ~np.eye(4, dtype=bool)
    np.testing.assert_allclose(drawn.data[off], expected.numpy()[off], atol=1e-5)
    assert [t.get_text() for t in figures[0].axes[0].get_xticklabels()] == order
    low, high = image.get_clim()
    assert low == -high and high >= np.abs(expected.numpy()[off]).max()


def test_synapse_plots_show_every_synapse(run, figures):
    rows = run.model.synapses()
    plot_synapses(run.model, "unused.png", per="direction", samples=100)
    for ax in figures[0].axes:
        direction = ax.get_title(loc="left").split()[0]
        mine = [r for r in rows if r["direction"] == direction]
        assert ax.get_title(loc="left").endswith(f", {len(mine)} synapses")
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        kinds = {k: sum(r["kind"] == k for r in mine) for k in ("gaussian", "bernoulli",
                                                                "fixed")}
        assert [x for x in legend if not x.startswith("mean")] == [
            f"{k} ({n})" for k, n in kinds.items() if n]
    plot_synapses(run.model, "unused.png", per="edge", samples=100, max_edges=len(rows))
    ax = figures[1].axes[0]
    (means,) = [c for c in ax.collections if c.get_label() == "mean"]
    assert sorted(means.get_offsets()[:, 0]) == pytest.approx(sorted(r["mean"] for r in rows))
    labels = {t.get_text() for t in ax.get_yticklabels()}
    arrow = {"down": "→", "up": "←"}
    assert labels == {f"{r['parent']} {arrow[r['direction']]} {r['child']}  ({r['kind']})"
                      for r in rows}


def test_reliability_diagrams_and_their_numbers(run, tmp_path):
    from taskgraph.metrics import expected_calibration_error

    data = reliability_data(run.model, run.loader)
    assert set(data) == {"mammal", "diet", "species"}  # no regression task
    outcome, conf = data["mammal"]
    bins = reliability_bins(outcome, conf, 15)
    assert bins["ece"] == pytest.approx(expected_calibration_error(outcome, conf), abs=1e-9)
    assert int(bins["count"].sum()) == outcome.size
    out = plot_reliability(run.model, run.loader, tmp_path / "rel.png", samples=2)
    assert png_size(out)[0] > 400
    with pytest.raises(DataError, match="is a regression task"):
        plot_reliability(run.model, run.loader, io.BytesIO(), tasks=["weight_kg"])
    with pytest.raises(DataError, match="did you mean 'diet'"):
        plot_reliability(run.model, run.loader, io.BytesIO(), tasks=["dite"])


def test_reliability_bins_match_a_hand_count():
    b = reliability_bins(np.array([1, 0, 1, 1, 0]), np.array([0.05, 0.05, 0.95, 1.0, 0.5]), 10)
    assert b["count"].tolist() == [2, 0, 0, 0, 0, 1, 0, 0, 0, 2]
    assert b["accuracy"][0] == 0.5 and b["accuracy"][9] == 1.0
    assert b["ece"] == pytest.approx((abs(1 - 0.1) + abs(0 - 0.5) + abs(2 - 1.95)) / 5)
