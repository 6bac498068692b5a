"""evaluate() on small compiled models, checked against scikit-learn applied directly to
the model's predict() output."""

import math

import networkx as nx
import numpy as np
import pytest
import torch
from sklearn.metrics import (accuracy_score, average_precision_score, f1_score, log_loss,
                             mean_absolute_error, mean_squared_error, r2_score, roc_auc_score,
                             top_k_accuracy_score, brier_score_loss)

import taskgraph as tg
from taskgraph.errors import ArgumentError, DataError
from taskgraph.metrics import Report, evaluate, expected_calibration_error
from taskgraph.model.predict import Prediction

UNCERTAINTY = {"ece_adaptive", "aurc", "error_auroc_entropy", "entropy"}
BINARY = {"type", "n", "score", "accuracy", "f1", "auroc", "average_precision", "ece", "nll",
          "brier"} | UNCERTAINTY
MULTICLASS = {"type", "n", "score", "accuracy", "f1_macro", "f1_weighted", "ece", "nll",
              "brier"} | UNCERTAINTY
MULTILABEL = {"type", "n", "score", "f1_micro", "f1_macro", "average_precision", "ece", "nll",
              "brier"} | UNCERTAINTY
REGRESSION = {"type", "n", "score", "mse", "mae", "r2"}


def known(y):
    return ~np.isnan(y) & (y != -1)


def test_animals_keys_counts_and_ranges(make_case):
    model, X, Y, loader = make_case("hierarchies/animals.yaml")
    report = evaluate(model, loader)
    assert isinstance(report, Report) and report.n_examples == 64 and report.samples == 0
    assert list(report.tasks) == ["mammal", "diet", "species", "weight_kg"]
    assert set(report.tasks["mammal"]) == BINARY
    assert set(report.tasks["diet"]) == MULTICLASS  # 3 classes: no top-3
    assert set(report.tasks["species"]) == MULTICLASS | {"top3_accuracy"}
    assert set(report.tasks["weight_kg"]) == REGRESSION
    y = Y.numpy()
    for j, name in enumerate(report.tasks):
        assert report.tasks[name]["n"] == int(known(y[:, j]).sum()) < 64
    for name, m in report.tasks.items():
        for key, value in m.items():
            if key in ("accuracy", "f1", "auroc", "average_precision", "ece", "f1_macro",
                       "f1_weighted", "top3_accuracy", "f1_micro"):
                assert 0 <= value <= 1, (name, key, value)
            if key in ("nll", "brier", "mse", "mae"):
                assert value >= 0, (name, key)
        assert -1 <= m["score"] <= 1
    scores = [m["score"] for m in report.tasks.values()]
    assert report.overall == pytest.approx(np.mean(scores))
    assert report.hierarchy == {}  # a single binary task
    assert report.tasks["weight_kg"]["score"] == pytest.approx(
        max(-1.0, min(1.0, report.tasks["weight_kg"]["r2"])))


def test_animals_metrics_equal_sklearn_on_predict(make_case):
    model, X, Y, loader = make_case("hierarchies/animals.yaml", n=80)
    report = evaluate(model, loader)
    pred = model.predict(X)
    y = Y.numpy().astype(np.float64)

    k = known(y[:, 0])
    t, p = y[k, 0], pred["mammal"].probs.numpy().astype(np.float64)[k]
    m = report.tasks["mammal"]
    assert m["accuracy"] == pytest.approx(accuracy_score(t, p >= 0.5))
    assert m["f1"] == pytest.approx(f1_score(t, p >= 0.5, zero_division=0))
    assert m["auroc"] == pytest.approx(roc_auc_score(t, p), rel=1e-5)
    assert m["average_precision"] == pytest.approx(average_precision_score(t, p), rel=1e-5)
    assert m["nll"] == pytest.approx(log_loss(t, p, labels=[0, 1]), rel=1e-5)
    assert m["brier"] == pytest.approx(brier_score_loss(t, p, pos_label=1), rel=1e-5)
    assert m["ece"] == pytest.approx(expected_calibration_error(t, p), abs=1e-6)
    assert m["score"] == m["average_precision"]

    for j, name in ((1, "diet"), (2, "species")):
        k = known(y[:, j])
        t = y[k, j].astype(int)
        probs = pred[name].probs.numpy().astype(np.float64)[k]
        probs /= probs.sum(1, keepdims=True)
        label = pred[name].label.numpy()[k]
        K = probs.shape[1]
        m = report.tasks[name]
        assert m["accuracy"] == pytest.approx(accuracy_score(t, label))
        assert m["f1_macro"] == pytest.approx(f1_score(t, label, average="macro",
                                                       zero_division=0))
        assert m["f1_weighted"] == pytest.approx(f1_score(t, label, average="weighted",
                                                          zero_division=0))
        assert m["nll"] == pytest.approx(log_loss(t, probs, labels=range(K)), rel=1e-5)
        onehot = np.eye(K)[t]
        assert m["brier"] == pytest.approx(np.mean(np.sum((probs - onehot) ** 2, 1)), rel=1e-5)
        top = probs.argmax(1)
        conf = probs.max(1)
        assert m["ece"] == pytest.approx(expected_calibration_error(top == t, conf), abs=1e-6)
        if K > 3:
            assert m["top3_accuracy"] == pytest.approx(
                top_k_accuracy_score(t, probs, k=3, labels=range(K)))

    k = ~np.isnan(y[:, 3])
    t, v = y[k, 3], pred["weight_kg"].value.numpy().astype(np.float64)[k]
    m = report.tasks["weight_kg"]
    assert m["mse"] == pytest.approx(mean_squared_error(t, v), rel=1e-5)
    assert m["mae"] == pytest.approx(mean_absolute_error(t, v), rel=1e-5)
    assert m["r2"] == pytest.approx(r2_score(t, v), rel=1e-5)


def test_cell_functions_binary_and_hierarchy_metrics(make_case):
    model, X, Y, loader = make_case("hierarchies/cell_functions.yaml", n=90)
    report = evaluate(model, loader)
    h = model.hierarchy
    pred = model.predict(X)
    y = Y.numpy().astype(np.float64)
    P = np.stack([pred[n].probs.numpy() for n in h.task_names], 1).astype(np.float64)
    for j, name in enumerate(h.task_names):
        k = known(y[:, j])
        m = report.tasks[name]
        assert set(m) == BINARY and m["n"] == k.sum()
        assert m["accuracy"] == pytest.approx(accuracy_score(y[k, j], P[k, j] >= 0.5))
        assert m["f1"] == pytest.approx(f1_score(y[k, j], P[k, j] >= 0.5, zero_division=0))
        assert m["auroc"] == pytest.approx(roc_auc_score(y[k, j], P[k, j]), rel=1e-5)
        assert m["average_precision"] == pytest.approx(
            average_precision_score(y[k, j], P[k, j]), rel=1e-5)
        assert m["nll"] == pytest.approx(log_loss(y[k, j], P[k, j], labels=[0, 1]), rel=1e-5)

    hier = report.hierarchy
    roots = [h.index[r] for r in h.roots]
    assert hier["excluded"] == ["metabolism", "signaling"] and hier["binary_tasks"] == 7
    keep = known(y)
    keep[:, roots] = False
    assert hier["auprc_bar"] == pytest.approx(average_precision_score(y[keep], P[keep]),
                                              rel=1e-5)
    # hierarchical P/R by an explicit loop over examples with networkx ancestors
    both = n_pred = n_true = 0
    for i in range(len(y)):
        labelled = {t for t in h.task_names if keep[i, h.index[t]]}
        pred_set, true_set = set(), set()
        for t in h.task_names:
            if P[i, h.index[t]] >= 0.5:
                pred_set |= {t} | h.ancestors(t)
            if y[i, h.index[t]] == 1:
                true_set |= {t} | h.ancestors(t)
        pred_set &= labelled
        true_set &= labelled
        both += len(pred_set & true_set)
        n_pred += len(pred_set)
        n_true += len(true_set)
    assert hier["h_precision"] == pytest.approx(both / n_pred)
    assert hier["h_recall"] == pytest.approx(both / n_true)
    assert hier["h_f1"] == pytest.approx(2 * both / (n_pred + n_true))
    assert hier["coherence_violation_rate"] == 0.0  # the YAML asks for a coherent model
    incoherent = tg.compile("hierarchies/cell_functions.yaml", in_features=6, task_dim=4,
                            coherent=False)
    rate = evaluate(incoherent, loader).hierarchy["coherence_violation_rate"]
    P2 = np.stack([incoherent.predict(X)[n].probs.numpy() for n in h.task_names], 1)
    edges = [(h.index[a], h.index[b]) for a, b in h.edge_list()]
    expected = np.mean([[P2[i, a] < P2[i, b] - 1e-6 for a, b in edges] for i in range(len(y))])
    assert rate == pytest.approx(expected)


def test_roots_argument(make_case):
    model, X, Y, loader = make_case("hierarchies/cell_functions.yaml")
    all_tasks = evaluate(model, loader, roots=[]).hierarchy
    one = evaluate(model, loader, roots=["metabolism"]).hierarchy
    assert all_tasks["excluded"] == [] and all_tasks["evaluated_tasks"] == 7
    assert one["excluded"] == ["metabolism"] and one["evaluated_tasks"] == 6
    with pytest.raises(ArgumentError, match="roots: .*did you mean 'metabolism'"):
        evaluate(model, loader, roots=["metabolsim"])


def test_multilabel_matches_sklearn_2d_calls(make_case):
    model, X, Y, loader = make_case("hierarchies/sentiment.yaml", missing=0.0)
    report = evaluate(model, loader, threshold=0.4)
    pred = model.predict(X)
    target = Y.numpy()[:, 2:]  # sentiment, emotion, then the 5 aspect columns
    probs = pred["aspects"].probs.numpy().astype(np.float64)
    labels = (probs >= 0.4).astype(int)
    m = report.tasks["aspects"]
    assert set(m) == MULTILABEL and m["n"] == 64
    assert m["f1_micro"] == pytest.approx(f1_score(target, labels, average="micro"))
    assert m["f1_macro"] == pytest.approx(f1_score(target, labels, average="macro",
                                                   zero_division=0))
    assert m["average_precision"] == pytest.approx(
        average_precision_score(target, probs, average="micro"), rel=1e-5)
    assert m["brier"] == pytest.approx(np.mean((probs - target) ** 2), rel=1e-5)
    assert m["score"] == m["f1_micro"]


def test_multilabel_missing_entries_counted_per_example(make_case):
    model, X, Y, loader = make_case("hierarchies/sentiment.yaml", missing=0.5)
    report = evaluate(model, loader)
    target = Y.numpy()[:, 2:]
    assert report.tasks["aspects"]["n"] == int(known(target).any(1).sum())


def test_multi_output_regression():
    yaml = ("taskgraph: 1\ntasks:\n  a: {type: binary}\n"
            "  r: {type: regression, outputs: 2, parents: [a]}\n")
    torch.manual_seed(0)
    model = tg.compile(yaml, in_features=3, task_dim=4)
    X = torch.randn(30, 3)
    Y = torch.cat([torch.randint(0, 2, (30, 1)).float(), torch.randn(30, 2)], 1)
    report = evaluate(model, [(X[:10], Y[:10]), (X[10:], Y[10:])])
    value = model.predict(X)["r"].value.numpy()
    m = report.tasks["r"]
    assert m["n"] == 30
    assert m["mse"] == pytest.approx(mean_squared_error(Y[:, 1:].numpy(), value), rel=1e-5)
    assert m["r2"] == pytest.approx(r2_score(Y[:, 1:].numpy(), value), rel=1e-5)
    one = evaluate(model, [(X[:1], Y[:1])])
    assert one.tasks["r"]["r2"] is None and one.tasks["r"]["mse"] is not None


def test_samples_report_uncertainty_and_use_mc_means(make_case):
    model, X, Y, loader = make_case("hierarchies/cell_functions.yaml", n=40, batch_size=40)
    torch.manual_seed(7)
    report = evaluate(model, loader, samples=4)
    torch.manual_seed(7)
    (xb, _), = list(loader)  # the same draws: iterate the loader, then predict
    pred = model.predict(xb, samples=4)
    assert report.samples == 4
    y = Y.numpy().astype(np.float64)
    for j, name in enumerate(model.hierarchy.task_names):
        m = report.tasks[name]
        assert 0 <= m["mutual_info"] <= m["entropy"] <= math.log(2) + 1e-6
        assert m["entropy"] == pytest.approx(pred[name].entropy.mean().item(), rel=1e-5)
        assert m["mutual_info"] == pytest.approx(pred[name].mutual_info.mean().item(),
                                                 rel=1e-4, abs=1e-7)
        k = known(y[:, j])
        p = pred[name].probs.numpy().astype(np.float64)[k]
        assert m["nll"] == pytest.approx(log_loss(y[k, j], p, labels=[0, 1]), rel=1e-5)
    animals, _, _, loader = make_case("hierarchies/animals.yaml")
    report = evaluate(animals, loader, samples=4)
    assert "entropy" in report.tasks["species"] and "entropy" not in report.tasks["weight_kg"]
    assert report.tasks["species"]["entropy"] <= math.log(4) + 1e-6
    assert "mutual_info" in report.tasks["species"]
    deterministic = evaluate(animals, loader).tasks["species"]  # entropy of the mean only
    assert "entropy" in deterministic and "mutual_info" not in deterministic
    assert "error_auroc_mutual_info" not in deterministic


def test_batch_formats_give_the_same_report(make_case):
    model, X, Y, loader = make_case("hierarchies/animals.yaml")
    names = model.hierarchy.task_names
    as_mapping = [(xb, {n: yb[:, j] for j, n in enumerate(names)}) for xb, yb in loader]
    as_dict = [{"x": xb, "y": yb} for xb, yb in loader]
    reference = evaluate(model, loader).to_dict()
    assert evaluate(model, as_mapping).to_dict() == reference
    assert evaluate(model, as_dict).to_dict() == reference
    partial = [(xb, {"mammal": yb[:, 0]}) for xb, yb in loader]  # other tasks unlabelled
    report = evaluate(model, partial)
    assert report.tasks["mammal"] == reference["tasks"]["mammal"]
    assert report.tasks["diet"]["n"] == 0 and report.tasks["diet"]["accuracy"] is None
    assert report.tasks["diet"]["score"] is None
    assert report.overall == pytest.approx(report.tasks["mammal"]["score"])


def test_bad_input(make_case):
    model, X, Y, loader = make_case("hierarchies/animals.yaml")
    with pytest.raises(DataError, match="no batches"):
        evaluate(model, [])
    with pytest.raises(DataError, match="no batches"):
        evaluate(model, torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(X[:0], Y[:0]), batch_size=4))
    with pytest.raises(ArgumentError, match="evaluate: samples: expected an integer >= 0"):
        evaluate(model, loader, samples=-1)
    with pytest.raises(ArgumentError, match=r"evaluate: threshold: expected a number in \[0, 1\]"):
        evaluate(model, loader, threshold=1.5)
    bad = Y.clone()
    bad[3, 0] = 2
    with pytest.raises(DataError, match="'mammal'.*got 2"):
        evaluate(model, [(X, bad)])
    bad = Y.clone()
    bad[5, 2] = 7
    with pytest.raises(DataError, match="'species'"):
        evaluate(model, [(X, bad)])
    with pytest.raises(DataError, match="no targets"):
        evaluate(model, [{"x": X}])


class _StubModel(torch.nn.Module):
    """Probabilities handed out per batch, to time the metrics without a forward pass."""

    def __init__(self, hierarchy, probs):
        super().__init__()
        from taskgraph.model.layout import TaskLayout

        self.hierarchy, self.layout = hierarchy, TaskLayout(hierarchy)
        self.probs = probs
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def predict(self, x, *, samples=0, dropout=False):
        p = self.probs[x.long().view(-1)]
        block = {"mean": p, "std": torch.zeros_like(p), "entropy": torch.zeros_like(p),
                 "mi": torch.zeros_like(p), "label": (p > 0.5).long()}
        return Prediction(self, [block], samples)


def test_thousands_of_binary_labels_match_sklearn_per_task():
    T, N = 4000, 400
    rng = np.random.default_rng(0)
    graph = nx.DiGraph()
    graph.add_node("t0")
    for t in range(1, T):
        graph.add_edge(f"t{rng.integers(0, t)}", f"t{t}")
    h = tg.Hierarchy.from_networkx(graph, name="wide")
    probs = torch.randint(0, 9, (N, T)) / 8.0  # many ties, some exactly at the threshold
    Y = (torch.rand(N, T) < 0.1).float()
    Y[torch.rand(N, T) < 0.05] = -1
    loader = [(torch.arange(i, i + 100).float(), Y[i:i + 100]) for i in range(0, N, 100)]
    report = evaluate(_StubModel(h, probs), loader, roots=["t0"])
    y, p = Y.numpy().astype(np.float64), probs.numpy().astype(np.float64)
    for j in rng.choice(T, 25, replace=False):
        k = known(y[:, j])
        m = report.tasks[f"t{j}"]
        assert m["n"] == k.sum()
        assert m["accuracy"] == pytest.approx(accuracy_score(y[k, j], p[k, j] >= 0.5))
        assert m["f1"] == pytest.approx(f1_score(y[k, j], p[k, j] >= 0.5, zero_division=0))
        assert m["auroc"] == pytest.approx(roc_auc_score(y[k, j], p[k, j]))
        assert m["average_precision"] == pytest.approx(average_precision_score(y[k, j], p[k, j]))
        assert m["nll"] == pytest.approx(log_loss(y[k, j], p[k, j], labels=[0, 1]))
        assert m["brier"] == pytest.approx(brier_score_loss(y[k, j], p[k, j], pos_label=1))
    assert report.hierarchy["evaluated_tasks"] == T - 1


def test_single_class_binary_tasks_have_no_score_and_are_left_out_of_overall(make_case):
    model, X, Y, loader = make_case("hierarchies/cell_functions.yaml", n=60)
    names = list(model.hierarchy.task_names)
    Y = Y.clone()
    all_neg, all_pos, unlabelled = names[1], names[4], names[6]
    Y[:, 1] = torch.where(Y[:, 1] == -1, -1.0, 0.0)  # labelled examples: all negative
    Y[:, 4] = torch.where(Y[:, 4] == -1, -1.0, 1.0)  # all positive
    Y[:, 6] = -1.0  # no labelled example at all
    report = evaluate(model, torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X, Y), batch_size=16))
    assert report.single_class == [all_neg, all_pos]  # hierarchy order
    for name in (all_neg, all_pos):
        m = report.tasks[name]
        assert m["n"] > 0 and m["score"] is None
        assert m["average_precision"] is None and m["auroc"] is None
        assert m["accuracy"] is not None  # still reported, just not the score
    assert report.tasks[unlabelled]["score"] is None
    assert unlabelled not in report.single_class
    # overall: the mean AP of the four other tasks, by scikit-learn on predict()
    pred = model.predict(X)
    y = Y.numpy().astype(np.float64)
    aps = []
    for j, name in enumerate(names):
        if name in (all_neg, all_pos, unlabelled):
            continue
        k = known(y[:, j])
        aps.append(average_precision_score(y[k, j], pred[name].probs.numpy()[k]))
    assert len(aps) == 4 and report.scored_tasks == 4
    assert report.overall == pytest.approx(np.mean(aps), rel=1e-5)
    data = report.to_dict()
    assert data["single_class"] == [all_neg, all_pos] and data["scored_tasks"] == 4
    text = report.to_markdown()
    assert ("(mean score over 4 of 7 tasks); 2 binary tasks have a single class in these data and are "
            "not scored; 1 other task has too few labelled examples for a score") in text


def test_data_name_is_kept_in_every_view(make_case):
    model, X, Y, loader = make_case("hierarchies/animals.yaml")
    name = "train.csv (the training data: no --val given)"
    report = evaluate(model, loader, data_name=name)
    assert report.data_name == name and report.to_dict()["data_name"] == name
    assert f"\ndata: {name}\n" in report.to_markdown()
    plain = evaluate(model, loader)
    assert plain.data_name is None and "data:" not in plain.to_markdown()
    with pytest.raises(ArgumentError, match="evaluate: data_name: expected a string"):
        evaluate(model, loader, data_name=3)
