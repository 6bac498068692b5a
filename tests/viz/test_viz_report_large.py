"""The HTML report of a large hierarchy (per-level tables, the worst-calibrated and most
uncertain tasks, outlying synapses, reliability per level, risk–coverage), and of an
old report.json without the per-level measures."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from test_viz_report import decode_png, parse
from viz_helpers import tree_hierarchy

import taskgraph as tg
from taskgraph.viz import write_report
from taskgraph.viz.overview import MAX_WIDTH_PX

def cells(html: str, table_id: str) -> list[list[str]]:
    """The text of every body cell of table ``table_id``, row by row (tags removed)."""
    body = html.split(f'id="{table_id}"')[1].split("<tbody>")[1].split("</tbody>")[0]
    return [[re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", body)]


_NEW_TASK_KEYS = ("nll", "brier", "ece_adaptive", "aurc", "error_auroc_entropy",
                  "error_auroc_mutual_info", "error_auroc_std")


def _levels(tasks: dict, depths: dict) -> list[dict]:
    """Per-level rows computed here, by hand, from the task entries."""
    rows = []
    for level in sorted(set(depths.values())):
        names = [t for t in tasks if depths[t] == level]
        row = {"level": level, "type": "binary", "tasks": len(names)}
        for key in ("score", "nll", "brier", "ece", "ece_adaptive", "aurc",
                    "error_auroc_entropy"):
            row[key] = float(np.mean([tasks[t][key] for t in names]))
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """An 80-task model (random data) and a report dict with every new measure."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    h = tree_hierarchy(80, seed=5, window=20)
    model = tg.compile(h, in_features=6, task_dim=4)
    with torch.no_grad():
        model.edge_synapses.mu.add_(0.01 * torch.randn_like(model.edge_synapses.mu))
    x = torch.randn(120, 6)
    y = (torch.rand(120, 80) < 0.4).float()
    loader = DataLoader(TensorDataset(x, y), batch_size=64)
    rng = np.random.default_rng(0)
    tasks = {t: {"type": "binary", "n": 120, "score": float(rng.uniform()),
                 "ece": float(rng.uniform(0, 0.3)), "entropy": float(rng.uniform(0, 0.7)),
                 "mutual_info": float(rng.uniform(0, 0.01)),
                 **{k: float(rng.uniform()) for k in _NEW_TASK_KEYS}}
             for t in h.task_names}
    report = {"overall": 0.5, "n_examples": 120, "samples": 0, "tasks": tasks,
              "hierarchy": {}, "levels": _levels(tasks, h.depths)}
    folder = tmp_path_factory.mktemp("large")
    return model, loader, report, folder


def test_the_large_report_summarizes(large):
    model, loader, report, folder = large
    page = parse(write_report(None, folder / "r.html", model=model, report=report,
                              data=loader))
    assert page.headings == ["Task graph", "Metrics", "Calibration", "Synapses"]
    assert page.rows["levels-table"] == len(report["levels"]) == len(
        set(model.hierarchy.depths.values()))
    assert page.rows["worst-calibrated-table"] == 10 == page.rows["most-uncertain-table"]
    assert page.rows["metrics-table"] == 80
    assert page.rows["synapse-outliers-table"] == 15 and "synapse-table" not in page.rows
    alts = [i["alt"] for i in page.images]
    assert alts == ["task graph", "per-task scores", "reliability diagrams",
                    "risk-coverage curves", "outlying synapses", "sampled synapse weights",
                    "task-embedding similarity"]
    graph = decode_png(page.images[0]["src"])
    assert graph.size[0] <= MAX_WIDTH_PX


def test_the_worst_calibrated_and_most_uncertain_are_the_top_tasks(large):
    _, _, report, folder = large
    html = open(write_report(None, folder / "tables.html", report=report),
                encoding="utf-8").read()
    tasks = report["tasks"]
    worst = sorted(tasks, key=lambda t: -tasks[t]["ece"])[:10]
    rows = cells(html, "worst-calibrated-table")
    assert [r[0] for r in rows] == worst
    assert [r[4] for r in rows] == [f"{tasks[t]['ece']:.3f}" for t in worst]
    uncertain = sorted(tasks, key=lambda t: -tasks[t]["entropy"])[:10]
    assert [r[0] for r in cells(html, "most-uncertain-table")] == uncertain


def test_the_per_level_table_holds_the_report_values(large, tmp_path):
    model, _, report, _ = large
    out = write_report(None, tmp_path / "levels.html", model=None, report=report)
    rows = cells(open(out, encoding="utf-8").read(), "levels-table")
    assert len(rows) == len(report["levels"])
    for row, level in zip(rows, report["levels"]):
        assert row[:3] == [str(level["level"]), "binary", str(level["tasks"])]
        assert row[3] == f"{level['score']:.3f}" and row[6] == f"{level['ece']:.3f}"
        assert row[4] == f"{level['nll']:.4f}" and row[8] == f"{level['aurc']:.4f}"


def test_an_old_report_json_without_levels_still_renders(run, tmp_path):
    old = run.report.to_dict()
    old.pop("levels", None)
    for metrics in old["tasks"].values():
        for key in _NEW_TASK_KEYS:
            metrics.pop(key, None)
    folder = tmp_path / "old_run"
    folder.mkdir()
    (folder / "report.json").write_text(json.dumps(old), encoding="utf-8")
    page = parse(write_report(folder))
    assert page.headings == ["Metrics", "Calibration"]
    assert page.rows["metrics-table"] == len(run.hierarchy)
    assert "levels-table" not in page.rows and "worst-calibrated-table" not in page.rows
    with_levels = dict(old, levels=[{"level": 0, "type": "binary", "tasks": 1,
                                     "score": 0.5, "ece": 0.1}])
    (folder / "report.json").write_text(json.dumps(with_levels), encoding="utf-8")
    page = parse(write_report(folder))
    assert page.rows["levels-table"] == 1
