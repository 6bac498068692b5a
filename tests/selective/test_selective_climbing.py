"""Climbing on class paths: hand-made probabilities with known results, the paths of the
shipped hierarchies, the model-level call against a hand computation, and the outcomes
and risk–coverage curve on labelled rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import taskgraph as tg
from taskgraph.model.predict import TaskPrediction
from taskgraph.selective import (PathOutcomes, class_paths, climb, hierarchical_risk_coverage,
                                 path_outcomes, selective_predict)

FASHION = "hierarchies/fashion.yaml"
KIND = ["clothing", "footwear", "bag"]
GROUP = ["upper", "lower", "full", "open", "closed", "carried"]
ITEM = ["tshirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
        "bag", "ankle_boot"]


def one_hot_probs(width: int, picks: list[tuple[int, float]]) -> torch.Tensor:
    """Rows whose picked class has the given probability, the rest spread evenly."""
    rows = []
    for j, p in picks:
        row = torch.full((width,), (1 - p) / (width - 1))
        row[j] = p
        rows.append(row)
    return torch.stack(rows)


@pytest.fixture
def fashion_pred():
    # row 0: clothing .95 > upper .80 > shirt .60          kappa .95, .80, .60
    # row 1: footwear .70 > closed .90 > sneaker .85       kappa .70, .70, .70 (running min)
    # row 2: bag .99 > carried .98 > bag .97               kappa .99, .98, .97
    # row 3: clothing .40 > lower .90 > trouser .90        kappa .40, .40, .40
    kind = [(0, .95), (1, .70), (2, .99), (0, .40)]
    group = [(0, .80), (4, .90), (5, .98), (1, .90)]
    item = [(6, .60), (7, .85), (8, .97), (1, .90)]
    return {
        "kind": TaskPrediction("multiclass", probs=one_hot_probs(3, kind),
                               label=torch.tensor([j for j, _ in kind])),
        "group": TaskPrediction("multiclass", probs=one_hot_probs(6, group),
                                label=torch.tensor([j for j, _ in group])),
        "item": TaskPrediction("multiclass", probs=one_hot_probs(10, item),
                               label=torch.tensor([j for j, _ in item])),
    }


@pytest.mark.parametrize("c, depth, names, tasks", [
    (0.5, [3, 3, 3, 0], ["shirt", "sneaker", "bag", ""], ["item", "item", "item", ""]),
    (0.7, [2, 3, 3, 0], ["upper", "sneaker", "bag", ""], ["group", "item", "item", ""]),
    (0.75, [2, 0, 3, 0], ["upper", "", "bag", ""], ["group", "", "item", ""]),
    (0.975, [0, 0, 2, 0], ["", "", "carried", ""], ["", "", "group", ""]),
    (0.3, [3, 3, 3, 3], ["shirt", "sneaker", "bag", "trouser"], ["item"] * 4),
    (1.0, [0, 0, 0, 0], [""] * 4, [""] * 4),
])
def test_climbing_three_levels_by_hand(fashion_pred, c, depth, names, tasks):
    out = climb(tg.load_hierarchy(FASHION), fashion_pred, confidence=c)
    assert list(out) == ["item"]
    sel = out["item"]
    assert sel.depth.tolist() == depth
    assert sel.class_names().tolist() == names
    assert sel.task_names().tolist() == tasks
    assert sel.rejected.tolist() == [d == 0 for d in depth]
    np.testing.assert_allclose(sel.path_confidence.numpy(),
                               [[.95, .80, .60], [.70, .70, .70], [.99, .98, .97],
                                [.40, .40, .40]], rtol=1e-6)
    # the returned node's confidence; the root's where rejected
    expected = [[.95, .80, .60], [.70, .70, .70], [.99, .98, .97], [.40, .40, .40]]
    np.testing.assert_allclose(sel.confidence.numpy(),
                               [row[max(d, 1) - 1] for row, d in zip(expected, depth)],
                               rtol=1e-6)
    assert sel.label.tolist() == [
        [KIND, GROUP, ITEM][d - 1].index(n) if d else -1 for d, n in zip(depth, names)]


def test_a_path_that_ends_early():
    """sentiment 'neutral' has no emotion: the path stops at depth 1."""
    h = tg.load_hierarchy("hierarchies/sentiment.yaml")
    pred = {"sentiment": TaskPrediction("multiclass", probs=torch.tensor([[.1, .1, .8],
                                                                          [.7, .2, .1]]),
                                        label=torch.tensor([2, 0])),
            "emotion": TaskPrediction("multiclass",
                                      probs=torch.tensor([[.5, .1, .1, .1, .1, .1],
                                                          [.1, .6, .1, .1, .05, .05]]),
                                      label=torch.tensor([-1, 1]))}
    sel = climb(h, pred, confidence=0.55)["emotion"]
    assert sel.path_labels.tolist() == [[2, -1], [0, 1]]
    np.testing.assert_allclose(sel.path_confidence.numpy(), [[.8, 0], [.7, .6]], rtol=1e-6)
    assert sel.depth.tolist() == [1, 2] and sel.class_names().tolist() == ["neutral", "love"]
    assert climb(h, pred, confidence=0.65)["emotion"].class_names().tolist() == \
        ["neutral", "positive"]


def test_the_class_paths_of_the_shipped_hierarchies():
    def paths(name):
        return [(p.name, p.tasks) for p in class_paths(tg.load_hierarchy(f"hierarchies/{name}"))]

    assert paths("animals.yaml") == [("species", ("diet", "species"))]
    assert paths("fashion.yaml") == [("item", ("kind", "group", "item"))]
    assert paths("sentiment.yaml") == [("emotion", ("sentiment", "emotion"))]
    assert paths("cell_functions.yaml") == []
    fashion = class_paths(tg.load_hierarchy(FASHION))[0]
    # item classes -> their group: tshirt_top upper, trouser lower, ..., ankle_boot closed
    assert fashion.parent[1] == (0, 1, 0, 2, 0, 3, 0, 4, 5, 4)
    assert fashion.has_children(1).tolist() == [True] * 6
    assert fashion.has_children(2).tolist() == [False] * 10


def test_a_branching_class_tree_gives_one_path_per_deepest_task():
    h = tg.load_hierarchy("""\
taskgraph: 1
tasks:
  size: {type: multiclass, classes: [small, big]}
  animal:
    type: multiclass
    classes: [mouse, elephant]
    parents: [size]
    class_parents: {mouse: small, elephant: big}
  plant:
    type: multiclass
    classes: [moss, tree]
    parents: [size]
    class_parents: {moss: small, tree: big}
""")
    assert [(p.name, p.tasks) for p in class_paths(h)] == [("animal", ("size", "animal")),
                                                          ("plant", ("size", "plant"))]


@pytest.mark.parametrize("confidence, words", [
    (0.0, ["confidence", "(0, 1]", "0.0"]), (1.5, ["1.5"]), (float("nan"), ["nan"]),
    (True, ["True"]), ("high", ["'high'"]),
    ({"iteem": 0.5}, ["no class path 'iteem'", "did you mean 'item'"]),
    ({}, ["no threshold for class path(s) item"]),
    ({"item": -1}, ["confidence['item']", "-1"]),
])
def test_bad_confidence_is_an_argument_error(fashion_pred, confidence, words):
    with pytest.raises(tg.ArgumentError) as err:
        climb(tg.load_hierarchy(FASHION), fashion_pred, confidence=confidence)
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def test_no_class_path_and_missing_tasks_are_argument_errors(fashion_pred):
    with pytest.raises(tg.ArgumentError, match="'cell_functions' has no class path"):
        climb(tg.load_hierarchy("hierarchies/cell_functions.yaml"), {}, confidence=0.5)
    del fashion_pred["group"]
    with pytest.raises(tg.ArgumentError, match="task 'group'"):
        climb(tg.load_hierarchy(FASHION), fashion_pred, confidence=0.5)


def hand_climb(probs: list[np.ndarray], labels: list[np.ndarray], c: float):
    """Climbing written out row by row: running minimum, first node below c."""
    depth, kappa = [], []
    for i in range(len(labels[0])):
        k, running = [], 1.0
        for p, lab in zip(probs, labels):
            running = min(running, float(p[i, lab[i]])) if lab[i] >= 0 else 0.0
            k.append(running)
        kappa.append(k)
        depth.append(sum(1 for v in k if v >= np.float32(c)))
    return np.array(depth), np.array(kappa)


@pytest.mark.parametrize("samples", [0, 5])
def test_selective_predict_matches_a_hand_computation(samples):
    torch.manual_seed(1)
    model = tg.compile(FASHION, in_features=4, task_dim=4, encoder_spec={"hidden": [8]})
    x = torch.randn(32, 4)
    torch.manual_seed(7)
    out = selective_predict(model, x, confidence=0.15, samples=samples)["item"]
    torch.manual_seed(7)
    pred = model.predict(x, samples=samples)
    tasks = ("kind", "group", "item")
    depth, kappa = hand_climb([pred[t].probs.numpy() for t in tasks],
                              [pred[t].label.numpy() for t in tasks], 0.15)
    assert out.depth.tolist() == depth.tolist()
    np.testing.assert_allclose(out.path_confidence.numpy(), kappa, rtol=1e-6)
    assert (depth < 3).any() and (depth > 0).any()  # the threshold bites, not everywhere


# -- outcomes on labelled rows -------------------------------------------------------------
def animals_model():
    torch.manual_seed(0)
    return tg.compile("hierarchies/animals.yaml", in_features=3, task_dim=4,
                      encoder_spec={"hidden": [8]})


def test_path_outcomes_derive_the_true_path_and_skip_unknown_ones():
    model = animals_model()
    nan = float("nan")
    # columns: mammal, diet (herbivore carnivore omnivore), species (cat dog cow eagle), kg
    Y = torch.tensor([[1, 1, 0, 4.],      # cat, diet given: complete
                      [1, nan, 2, 600],   # cow, diet derived (herbivore): complete
                      [0, 1, nan, 5],     # only the diet: the species is unknown: skipped
                      [1, nan, nan, 9],   # nothing on the path: skipped
                      [1, 2, 1, 20]])     # dog, omnivore: complete
    x = torch.randn(5, 3)
    rows = path_outcomes(model, [(x, Y)])["species"]
    assert rows.n == 3 and rows.skipped == 2
    pred = model.predict(x)
    diet, species = pred["diet"].label.numpy(), pred["species"].label.numpy()
    truth = np.array([[1, 0], [0, 2], [2, 1]])
    kept = [0, 1, 4]
    np.testing.assert_array_equal(rows.wrong, np.stack([diet[kept], species[kept]], 1) != truth)
    _, kappa = hand_climb([pred["diet"].probs.numpy(), pred["species"].probs.numpy()],
                          [diet, species], 0.5)
    np.testing.assert_allclose(rows.confidence, kappa[kept], rtol=1e-6)


def test_labels_that_contradict_class_parents_are_a_data_error():
    Y = torch.tensor([[1, 0, 0, 4.]])  # a cat with a herbivore diet
    with pytest.raises(tg.DataError, match=r"row 0: species 'cat' lies under diet "
                                           r"'carnivore', but the row's diet label is "
                                           r"'herbivore'"):
        path_outcomes(animals_model(), [(torch.randn(1, 3), Y)])
    with pytest.raises(tg.DataError, match="no row has a known true path"):
        path_outcomes(animals_model(), [(torch.randn(1, 3), torch.tensor([[1., -1, -1, 2]]))])


def test_risk_coverage_by_hand():
    # three rows, two levels: kappa and whether each node is wrong
    rows = PathOutcomes("p", confidence=np.float32([[.9, .5], [.7, .7], [.6, .2]]),
                        wrong=np.array([[False, True], [False, False], [True, True]]))
    curve = rows.risk_coverage()
    # c = .9: row0@1 right | .7: row1@2 right | .6: row2@1 wrong | .5: row0@2 wrong | .2: row2@2
    np.testing.assert_allclose(curve.threshold, [.9, .7, .6, .5, .2], rtol=1e-6)
    np.testing.assert_allclose(curve.coverage, [1 / 3, 2 / 3, 1, 1, 1])
    np.testing.assert_allclose(curve.risk, [0, 0, 1 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(curve.size, [1, 1.5, 4 / 3, 5 / 3, 2])
    # area: each gain of coverage (1/3 each) weighed by the risk where it is reached
    assert curve.aurc == pytest.approx((0 + 0 + 1 / 3) / 3)


def test_one_level_aurc_is_the_usual_aurc():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.05, 1, 50).astype(np.float32)
    wrong = rng.uniform(size=50) > conf
    curve = PathOutcomes("p", confidence=conf[:, None], wrong=wrong[:, None]).risk_coverage()
    order = np.argsort(-conf)
    usual = np.mean(np.cumsum(wrong[order]) / np.arange(1, 51))  # (1/n) sum_k risk@k
    assert curve.aurc == pytest.approx(usual)
    assert curve.coverage[-1] == 1 and len(curve.threshold) == 50


def test_hierarchical_risk_coverage_on_a_model():
    model = animals_model()
    Y = torch.tensor([[1, 1, 0, 4.], [1, 0, 2, 600], [0, 1, 3, 5], [1, 2, 1, 20]] * 3)
    curves = hierarchical_risk_coverage(model, [(torch.randn(12, 3), Y)])
    curve = curves["species"]
    assert curve.n == 12 and curve.coverage[-1] == 1.0
    assert np.all(np.diff(curve.threshold) < 0) and np.all(np.diff(curve.coverage) >= 0)
    assert 0 <= curve.aurc <= 1 and np.all((curve.size >= 1) & (curve.size <= 2))


def test_outcomes_reject_confidence_that_grows_down_the_path():
    with pytest.raises(tg.ArgumentError, match="must not grow"):
        PathOutcomes("p", confidence=np.float32([[.5, .6]]), wrong=np.zeros((1, 2), bool))
