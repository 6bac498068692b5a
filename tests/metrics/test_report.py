"""Report views: JSON, Markdown, DataFrame and repr."""

import json
import math
import sys

import numpy as np
import pytest

from taskgraph.metrics import Report, evaluate


def handmade(n_tasks=3):
    tasks = {f"t{i:03d}": {"type": "binary", "n": i, "score": 0.5, "accuracy": np.float32(0.25),
                           "auroc": float("nan"), "average_precision": None,
                           "ece": np.float64(np.inf)} for i in range(n_tasks)}
    return Report(tasks=tasks, hierarchy={"h_f1": float("nan"), "excluded": ("root",)},
                  overall=np.float64(0.5), samples=0, n_examples=10)


def test_json_is_valid_and_has_no_nan(make_case, tmp_path):
    report = handmade()
    text = report.to_json()
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)
    task = data["tasks"]["t001"]
    assert task["auroc"] is None and task["ece"] is None and task["average_precision"] is None
    assert task["accuracy"] == 0.25 and data["hierarchy"] == {"h_f1": None, "excluded": ["root"]}
    assert data["overall"] == 0.5 and data["n_examples"] == 10
    assert data["data_name"] is None and data["single_class"] == [] and data["scored_tasks"] == 3
    model, X, Y, loader = make_case("hierarchies/cell_functions.yaml")
    report = evaluate(model, loader, samples=2)
    path = tmp_path / "report.json"
    text = report.to_json(path)
    assert json.loads(path.read_text()) == json.loads(text) == report.to_dict()
    assert set(json.loads(text)["tasks"]) == set(model.hierarchy.task_names)


def test_markdown_lists_every_task_and_the_hierarchy(make_case):
    model, X, Y, loader = make_case("hierarchies/cell_functions.yaml")
    text = evaluate(model, loader).to_markdown()
    for name in model.hierarchy.task_names:
        assert f"| {name} | binary |" in text
    assert "## Hierarchy" in text and "hierarchical F1" in text and "AU(PRC)-bar" in text
    model, X, Y, loader = make_case("hierarchies/animals.yaml")
    text = evaluate(model, loader).to_markdown()
    assert all(f"| {n} |" in text for n in model.hierarchy.task_names)
    assert "## Hierarchy" not in text and "hidden" not in text


def test_markdown_header_says_what_is_scored_and_on_which_data():
    report = handmade(4)
    report.tasks["t002"]["score"] = None
    report.single_class = ["t002"]
    report.data_name = "valid.csv"
    lines = report.to_markdown().splitlines()
    assert lines[:3] == ["# Evaluation report", "", "data: valid.csv"]
    assert lines[4].startswith("overall **0.500** (mean score over 3 of 4 tasks); 1 binary "
                               "task has a single class in these data and is not scored · "
                               "10 examples")
    assert "| not evaluated (roots) | 1: root |" in lines
    report.hierarchy["excluded"] = []
    assert "| not evaluated (roots) | none |" in report.to_markdown()
    report.hierarchy["excluded"] = [f"r{i}" for i in range(12)]
    assert ("| not evaluated (roots) | 12: r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, … "
            "(2 more) |") in report.to_markdown()


def test_markdown_shows_the_50_most_labelled_of_many_tasks():
    text = handmade(60).to_markdown()  # task t{i} has n = i
    shown = [f"t{i:03d}" for i in range(60) if f"| t{i:03d} |" in text]
    assert shown == [f"t{i:03d}" for i in range(10, 60)]
    assert "10 more are hidden" in text


def test_dataframe_has_one_row_per_task(make_case):
    pd = pytest.importorskip("pandas", reason="pandas is an optional dependency")
    model, X, Y, loader = make_case("hierarchies/animals.yaml")
    report = evaluate(model, loader)
    frame = report.to_dataframe()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.index) == list(model.hierarchy.task_names)
    assert frame.loc["diet", "type"] == "multiclass"
    assert frame.loc["mammal", "n"] == report.tasks["mammal"]["n"]
    assert math.isnan(frame.loc["weight_kg", "accuracy"])  # not a metric of regression


def test_dataframe_without_pandas_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # makes `import pandas` fail
    with pytest.raises(ImportError, match="pip install pandas"):
        handmade().to_dataframe()


def test_repr():
    assert repr(handmade()) == "Report(tasks=3, n_examples=10, samples=0, overall=0.5)"
    empty = Report(tasks={}, hierarchy={}, overall=None)
    assert repr(empty) == "Report(tasks=0, n_examples=0, samples=0, overall=None)"
    assert "overall **–**" in empty.to_markdown()
