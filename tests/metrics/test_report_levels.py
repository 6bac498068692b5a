"""Report.levels (per hierarchy level and task type), the per-task uncertainty measures
of evaluate() against their definitions applied to predict(), and the Markdown sections
of a long report."""

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import taskgraph as tg
from taskgraph.errors import ArgumentError
from taskgraph.metrics import Report, evaluate, level_rows

# hierarchies/cell_functions.yaml, the longest path from a root by hand:
# metabolism, signaling: 0; lipid_metabolism, carbohydrate_metabolism, receptor_signaling: 1;
# glycolysis (under carbohydrate_metabolism) 2; lipid_signaling (under lipid_metabolism
# at 1 and signaling at 0) 2.
CELL_LEVELS = {"metabolism": 0, "signaling": 0, "lipid_metabolism": 1,
               "carbohydrate_metabolism": 1, "receptor_signaling": 1, "glycolysis": 2,
               "lipid_signaling": 2}
MEASURES = ["score", "nll", "brier", "ece", "ece_adaptive", "aurc", "error_auroc_entropy"]


def known(y):
    return ~np.isnan(y) & (y != -1)


def test_levels_of_cell_functions(make_case):
    model, X, Y, loader = make_case("hierarchies/cell_functions.yaml", n=80)
    report = evaluate(model, loader)
    assert [(r["level"], r["type"], r["tasks"]) for r in report.levels] == \
        [(0, "binary", 2), (1, "binary", 3), (2, "binary", 2)]
    for row in report.levels:
        assert list(row) == ["level", "type", "tasks"] + MEASURES
        names = [n for n, level in CELL_LEVELS.items() if level == row["level"]]
        for key in MEASURES:
            values = [report.tasks[n][key] for n in names if report.tasks[n][key] is not None]
            assert row[key] == pytest.approx(np.mean(values)), (row["level"], key)
    data = json.loads(report.to_json())
    assert data["levels"] == report.to_dict()["levels"]
    assert [r["tasks"] for r in data["levels"]] == [2, 3, 2]


def test_levels_split_by_type_and_skip_undefined_measures(make_case):
    model, X, Y, loader = make_case("hierarchies/animals.yaml")
    report = evaluate(model, loader)
    rows = [(r["level"], r["type"], r["tasks"]) for r in report.levels]
    assert rows == [(0, "binary", 1), (1, "multiclass", 1), (2, "multiclass", 1),
                    (3, "regression", 1)]
    regression = report.levels[3]
    assert regression["score"] == pytest.approx(report.tasks["weight_kg"]["score"])
    assert all(regression[key] is None for key in MEASURES[1:])
    yaml = ("taskgraph: 1\ntasks:\n  a: {type: binary}\n  b: {type: binary, parents: [a]}\n"
            "  c: {type: multiclass, classes: [x, y, z], parents: [a]}\n"
            "  d: {type: binary, parents: [b, c]}\n")
    torch.manual_seed(0)
    mixed = tg.compile(yaml, in_features=3, task_dim=4)
    Yb = torch.tensor([[1., 0., 2., 1.], [0., 1., 0., 0.], [1., 1., 1., -1.], [0., 0., 2., 1.]])
    report = evaluate(mixed, [(torch.randn(4, 3), Yb)])
    assert [(r["level"], r["type"], r["tasks"]) for r in report.levels] == \
        [(0, "binary", 1), (1, "binary", 1), (1, "multiclass", 1), (2, "binary", 1)]


def test_level_rows_mean_over_defined_values_only():
    tasks = {"a": {"type": "binary", "score": 0.2, "ece": 0.1, "aurc": None},
             "b": {"type": "binary", "score": None, "ece": 0.3, "aurc": None},
             "c": {"type": "multiclass", "score": 0.9, "ece": 0.05}}
    rows = level_rows(tasks, {"a": 1, "b": 1, "c": 0})
    assert [(r["level"], r["type"], r["tasks"]) for r in rows] == \
        [(0, "multiclass", 1), (1, "binary", 2)]
    assert rows[1]["score"] == 0.2 and rows[1]["ece"] == pytest.approx(0.2)
    assert rows[1]["aurc"] is None and rows[1]["nll"] is None
    assert "error_auroc_mutual_info" not in rows[1]
    tasks["a"]["error_auroc_mutual_info"] = 0.7
    assert level_rows(tasks, {"a": 1, "b": 1, "c": 0})[1]["error_auroc_mutual_info"] == 0.7


def _entropy(p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(p * np.log(p) + (1 - p) * np.log(1 - p))


def _aurc(errors, uncertainty):
    """The tie-free definition, written out (float64 entropies of random probabilities)."""
    order = np.argsort(uncertainty, kind="stable")
    return float(np.mean(np.cumsum(errors[order]) / np.arange(1, len(order) + 1)))


def test_binary_measures_equal_their_definitions_on_predict(make_case):
    model, X, Y, loader = make_case("hierarchies/cell_functions.yaml", n=40, batch_size=40)
    torch.manual_seed(5)
    report = evaluate(model, loader, samples=6, threshold=0.4)
    torch.manual_seed(5)
    (xb, _), = list(loader)  # the same draws: iterate the loader, then predict
    pred = model.predict(xb, samples=6)
    y = Y.numpy().astype(np.float64)
    for j, name in enumerate(model.hierarchy.task_names):
        m = report.tasks[name]
        k = known(y[:, j])
        p = pred[name].probs.numpy().astype(np.float64)
        errors = ((p[k] >= 0.4) != (y[k, j] == 1)).astype(float)
        assert m["entropy"] == pytest.approx(_entropy(p).mean(), rel=1e-6)
        assert m["aurc"] == pytest.approx(_aurc(errors, _entropy(p[k])), rel=1e-9)
        for key, score in (("error_auroc_entropy", _entropy(p[k])),
                           ("error_auroc_mutual_info", pred[name].mutual_info.numpy()[k]),
                           ("error_auroc_std", pred[name].std.numpy()[k])):
            if 0 < errors.sum() < errors.size:
                assert m[key] == pytest.approx(roc_auc_score(errors, score)), (name, key)
            else:
                assert m[key] is None
    assert set(report.levels[0]) >= {"error_auroc_mutual_info", "error_auroc_std"}


def test_multiclass_and_multilabel_measures_on_predict(make_case):
    model, X, Y, loader = make_case("hierarchies/sentiment.yaml", n=48, batch_size=48,
                                    missing=0.1)
    torch.manual_seed(2)
    report = evaluate(model, loader, samples=5)
    torch.manual_seed(2)
    (xb, _), = list(loader)
    pred = model.predict(xb, samples=5)
    y = Y.numpy().astype(np.float64)
    for j, name in ((0, "sentiment"), (1, "emotion")):
        k = known(y[:, j])
        probs = pred[name].probs.numpy().astype(np.float64)
        probs /= probs.sum(1, keepdims=True)
        top = probs.argmax(1)
        errors = (top[k] != y[k, j]).astype(float)
        entropy = -(probs * np.log(np.maximum(probs, 1e-12))).sum(1)
        std_top = pred[name].std.numpy()[np.arange(len(top)), top]
        m = report.tasks[name]
        assert m["aurc"] == pytest.approx(_aurc(errors, entropy[k]))
        assert m["error_auroc_entropy"] == pytest.approx(roc_auc_score(errors, entropy[k]))
        assert m["error_auroc_mutual_info"] == pytest.approx(
            roc_auc_score(errors, pred[name].mutual_info.numpy()[k]))
        assert m["error_auroc_std"] == pytest.approx(roc_auc_score(errors, std_top[k]))
    target = y[:, 2:]  # the five aspect columns: (example, label) entries pooled
    k = known(target)
    p = pred["aspects"].probs.numpy().astype(np.float64)
    errors = ((p[k] >= 0.5) != (target[k] == 1)).astype(float)
    m = report.tasks["aspects"]
    assert m["aurc"] == pytest.approx(_aurc(errors, _entropy(p[k])))
    assert m["error_auroc_mutual_info"] == pytest.approx(
        roc_auc_score(errors, pred["aspects"].mutual_info.numpy()[k]))


def test_mc_dropout_is_passed_through(make_case):
    model, X, Y, loader = make_case("hierarchies/animals.yaml", n=32, batch_size=32)
    torch.manual_seed(1)
    report = evaluate(model, loader, samples=4, dropout=True)
    torch.manual_seed(1)
    (xb, _), = list(loader)  # the same draws: iterate the loader, then predict
    pred = model.predict(xb, samples=4, dropout=True)
    assert report.samples == 4
    assert report.draws == "MC dropout" and "samples 4 (MC dropout)" in report.to_markdown()
    assert report.to_dict()["draws"] == "MC dropout"
    assert evaluate(model, loader, samples=2, dropout=False).draws == "synapses"
    assert evaluate(model, loader).draws is None
    assert report.tasks["diet"]["mutual_info"] == pytest.approx(
        pred["diet"].mutual_info.mean().item(), rel=1e-5)
    assert report.tasks["diet"]["mutual_info"] > 0  # dropout draws differ
    with pytest.raises(ArgumentError, match="dropout=True needs samples"):
        evaluate(model, loader, dropout=True)
    with pytest.raises(ArgumentError, match="evaluate: dropout: expected True, False or None"):
        evaluate(model, loader, samples=2, dropout="yes")
    plain, _, _, loader = make_case("hierarchies/cell_functions.yaml")
    with pytest.raises(ArgumentError, match="no dropout"):
        evaluate(plain, loader, samples=2, dropout=True)


def long_report(n_tasks=60):
    tasks = {f"t{i:02d}": {"type": "binary", "n": 100 + i, "score": 0.5,
                           "ece": (i * 7 % 60) / 100, "entropy": (i * 11 % 60) / 100}
             for i in range(n_tasks)}
    if "t17" in tasks:
        tasks["t17"]["ece"] = None  # would be the worst (0.59); undefined: never listed
    levels = level_rows(tasks, {name: i % 3 for i, name in enumerate(tasks)})
    return Report(tasks=tasks, hierarchy={}, overall=0.5, n_examples=100, levels=levels)


def test_markdown_levels_table_comes_before_the_tasks():
    model_free = long_report(6)
    text = model_free.to_markdown()
    assert text.index("## Levels") < text.index("## Tasks (6)")
    assert ("| level | type | tasks | score | NLL | Brier | ECE | ECE (equal mass) | AURC | "
            "error AUROC (entropy) |") in text
    assert "| 0 | binary | 2 | 0.500 | – | – |" in text
    assert "Worst-calibrated" not in text and "Most uncertain" not in text  # few tasks


def test_markdown_of_many_tasks_lists_the_worst_calibrated_and_most_uncertain():
    report = long_report(60)
    text = report.to_markdown()
    lines = text.splitlines()
    ece = {n: m["ece"] for n, m in report.tasks.items() if m["ece"] is not None}
    worst = sorted(ece, key=lambda n: (-ece[n], n))[:10]
    start = lines.index("## Worst-calibrated tasks (top 10 by ECE)")
    listed = [line.split(". ", 1)[1].split(":")[0] for line in lines[start + 2:start + 12]]
    assert listed == worst and "t17" not in listed
    assert lines[start + 2] == (f"1. {worst[0]}: ECE {ece[worst[0]]:.3f} (binary, "
                                f"n {report.tasks[worst[0]]['n']})")
    entropy = {n: m["entropy"] for n, m in report.tasks.items()}
    start = lines.index("## Most uncertain tasks (top 10 by mean predictive entropy)")
    listed = [line.split(". ", 1)[1].split(":")[0] for line in lines[start + 2:start + 12]]
    assert listed == sorted(entropy, key=lambda n: (-entropy[n], n))[:10]
    assert text.index("## Levels") < text.index("## Worst-calibrated") < \
        text.index("## Most uncertain") < text.index("## Tasks (60)")


def test_old_reports_without_levels_still_load_and_render(tmp_path):
    from taskgraph.viz.plots import load_report

    report = long_report(5)
    data = report.to_dict()
    del data["levels"]  # a report.json written before levels existed
    path = tmp_path / "report.json"
    path.write_text(json.dumps(data))
    loaded = load_report(path)
    assert "levels" not in loaded and set(loaded["tasks"]) == set(report.tasks)
    old = Report(tasks=report.tasks, hierarchy={}, overall=0.5)
    assert old.levels == [] and "## Levels" not in old.to_markdown()
    assert old.to_dict()["levels"] == []
