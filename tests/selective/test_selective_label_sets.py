"""Coherent label sets on a small DAG: sets and scores by hand for incoherent
probabilities, a coherent model's plain threshold, labels withheld for their
uncertainty (with their descendants), and the risk–coverage curve and threshold choice
on hand-made rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import binom

import taskgraph as tg
from taskgraph.model.predict import TaskPrediction
from taskgraph.selective import (LabelDag, LabelOutcomes, choose_label_threshold, label_outcomes,
                                 label_set_predict, label_set_risk_coverage, label_sets)

# a diamond under m, and a chain s -> r:   m -> a -> c,  m -> b -> c,  s -> r
DAG = """\
taskgraph: 1
name: diamond
tasks:
  m: {type: binary}
  a: {type: binary, parents: [m]}
  b: {type: binary, parents: [m]}
  c: {type: binary, parents: [a, b]}
  s: {type: binary}
  r: {type: binary, parents: [s]}
"""
NAMES = ["m", "a", "b", "c", "s", "r"]
EDGES = [("m", "a"), ("m", "b"), ("a", "c"), ("b", "c"), ("s", "r")]


def pred_of(probs, std=None, mi=None):
    probs = torch.tensor(probs, dtype=torch.float32)
    return {name: TaskPrediction(
        "binary", probs=probs[:, j],
        std=None if std is None else torch.tensor(std, dtype=torch.float32)[:, j],
        mutual_info=None if mi is None else torch.tensor(mi, dtype=torch.float32)[:, j])
        for j, name in enumerate(NAMES)}


def closed_upward(sets: list[list[str]]) -> bool:
    return all(parent in s for s in sets for parent, child in EDGES if child in s)


PROBS = [  # m     a     b     c     s     r
    [0.90, 0.80, 0.30, 0.70, 0.20, 0.60],  # c under a (.8) and b (.3): c needs b; r needs s
    [0.50, 0.95, 0.90, 0.85, 0.90, 0.40],  # everything under m (.5) falls with it
    [0.99, 0.90, 0.70, 0.65, 0.80, 0.80],  # coherent already
]


def test_sets_and_scores_by_hand():
    out = label_sets(tg.load_hierarchy(DAG), pred_of(PROBS), threshold=0.6)
    # s_c = min(c, a, b, m) over both of its parents' lines
    np.testing.assert_allclose(out.score.numpy(), [[.9, .8, .3, .3, .2, .2],
                                                   [.5, .5, .5, .5, .9, .4],
                                                   [.99, .9, .7, .65, .8, .8]], rtol=1e-6)
    assert out.sets() == [["m", "a"], ["s"], ["m", "a", "b", "c", "s", "r"]]
    assert closed_upward(out.sets())
    # p >= .6 but left out: row 0 c and r, row 1 a, b, c
    assert out.incoherent == 5
    assert out.joined().tolist() == ["m;a", "s", "m;a;b;c;s;r"]
    assert not out.withheld.any()


def test_the_plain_threshold_is_not_closed_upward_for_these_probabilities():
    """The reason for the minimum: {p >= tau} alone breaks coherence here."""
    plain = [[NAMES[j] for j, p in enumerate(row) if p >= 0.6] for row in PROBS]
    assert not closed_upward(plain)


def test_a_coherent_model_needs_no_enforcing():
    torch.manual_seed(0)
    model = tg.compile("hierarchies/cell_functions.yaml", in_features=4, task_dim=4,
                       encoder_spec={"hidden": [8]})
    assert model.config.coherent
    x = torch.randn(64, 4)
    for tau in (0.3, 0.5, 0.7):
        out = label_set_predict(model, x, threshold=tau)
        p = model.predict(x)
        dag = LabelDag(model.hierarchy)
        plain = torch.stack([p[name].probs for name in dag.names], 1) >= tau
        assert torch.equal(out.labels, plain) and out.incoherent == 0
        assert dag.violations(out.labels) == 0
    edges = [(dag.names[i], dag.names[j]) for i, j in dag.edges]
    assert ("lipid_metabolism", "lipid_signaling") in edges and len(edges) == 6


def test_uncertain_labels_are_withheld_with_their_descendants():
    std = [[0.01, 0.01, 0.01, 0.01, 0.01, 0.01],
           [0.01, 0.01, 0.01, 0.01, 0.30, 0.01],   # s withheld, and r below it
           [0.01, 0.20, 0.01, 0.01, 0.01, 0.01]]   # a withheld, and c below it
    out = label_sets(tg.load_hierarchy(DAG), pred_of(PROBS, std=std), threshold=0.6,
                     max_uncertainty=0.1)
    assert out.sets() == [["m", "a"], [], ["m", "b", "s", "r"]]
    assert out.joined(withheld=True).tolist() == ["", "s", "a;c"]
    assert closed_upward(out.sets())
    np.testing.assert_allclose(out.score[2].numpy(), [.99, 0, .7, 0, .8, .8], rtol=1e-6)


def test_mutual_information_can_withhold_too():
    mi = [[0.0] * 6, [0.0] * 6, [0.5, 0, 0, 0, 0, 0]]  # m withheld: its whole diamond goes
    out = label_sets(tg.load_hierarchy(DAG), pred_of(PROBS, mi=mi), threshold=0.6,
                     max_uncertainty=0.1, uncertainty="mutual_info")
    assert out.sets()[2] == ["s", "r"]
    assert out.joined(withheld=True).tolist()[2] == "m;a;b;c"


@pytest.mark.parametrize("kwargs, words", [
    ({"threshold": 0}, ["threshold", "(0, 1]"]), ({"threshold": 1.01}, ["1.01"]),
    ({"threshold": 0.5, "max_uncertainty": -1}, ["max_uncertainty", ">= 0"]),
    ({"threshold": 0.5, "max_uncertainty": 0.1, "uncertainty": "variance"},
     ["uncertainty", "'std'", "'variance'"]),
    ({"threshold": 0.5, "max_uncertainty": 0.1}, ["no std for binary task 'm'", "samples"]),
])
def test_bad_label_set_arguments(kwargs, words):
    with pytest.raises(tg.ArgumentError) as err:
        label_sets(tg.load_hierarchy(DAG), pred_of(PROBS), **kwargs)
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def test_max_uncertainty_needs_samples_on_a_model():
    model = tg.compile(DAG, in_features=3, task_dim=4)
    with pytest.raises(tg.ArgumentError, match="max_uncertainty needs samples > 0"):
        label_set_predict(model, torch.randn(2, 3), threshold=0.5, max_uncertainty=0.1)
    with pytest.raises(tg.ArgumentError, match="no binary task"):
        label_set_predict(tg.compile("hierarchies/fashion.yaml", in_features=3, task_dim=4),
                          torch.randn(2, 3), threshold=0.5)


# -- rows with labels: curve and threshold ------------------------------------------------
def hand_rows() -> LabelOutcomes:
    score = np.float32([[.9, .8, .3, .3, .2, .2],
                        [.5, .5, .5, .5, .9, .4],
                        [.99, .9, .7, .65, .8, .8]])
    nan = np.nan
    truth = np.array([[1, 1, 0, 0, 0, 0],
                      [1, 0, nan, 0, 1, 1],     # b unlabelled: not evaluated
                      [1, 1, 1, 0, 1, 0]])
    evaluated = np.array([False, True, True, True, False, True])  # m and s are roots
    return LabelOutcomes(tuple(NAMES), score, truth, evaluated)


def fdp_by_hand(rows: LabelOutcomes, tau: float) -> tuple[list[float], int, int]:
    """Per accepted row its false-discovery proportion; all predicted, all false."""
    out, n_all, f_all = [], 0, 0
    for s, y in zip(rows.score, rows.truth):
        picked = [j for j in range(len(s)) if rows.evaluated[j] and not np.isnan(y[j])
                  and s[j] >= np.float32(tau)]
        if picked:
            f = sum(1 for j in picked if y[j] == 0)
            out.append(f / len(picked))
            n_all += len(picked)
            f_all += f
    return out, n_all, f_all


def test_label_risk_coverage_by_hand():
    rows = hand_rows()
    curve = rows.risk_coverage()
    # evaluated, labelled scores: row0 a .8, b .3, c .3, r .2; row1 a .5, c .5, r .4;
    # row2 a .9, b .7, c .65, r .8
    np.testing.assert_allclose(curve.threshold, [.9, .8, .7, .65, .5, .4, .3, .2], rtol=1e-6)
    for j, tau in enumerate(curve.threshold):
        fdp, n_all, f_all = fdp_by_hand(rows, float(tau))
        assert curve.coverage[j] == pytest.approx(len(fdp) / 3)
        assert curve.risk[j] == pytest.approx(np.mean(fdp))
        assert curve.precision[j] == pytest.approx(1 - f_all / n_all)
        assert curve.size[j] == pytest.approx(n_all / len(fdp))
    # at .65: row0 {a} right, row2 {a, b, c, r} with c and r false -> mean(0, 1/2)
    assert curve.risk[3] == pytest.approx(0.25)


def hb_bound(mean: float, m: int, level: float) -> float:
    """The Hoeffding-Bentkus bound, by a fine scan of the p-value written out."""
    a = np.linspace(max(mean, 1e-9), 1 - 1e-9, 200001)
    q = np.minimum(mean, a)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(q > 0, q * np.log(q / a), 0.0) + (1 - q) * np.log((1 - q) / (1 - a))
    p = np.minimum(np.exp(-m * h), np.e * binom.cdf(np.ceil(m * mean - 1e-9), m, a))
    return float(a[np.argmax(p <= level)])


def test_label_threshold_choice_by_hand():
    # 150 copies of the three rows: the guarantee needs more than three
    base = hand_rows()
    rows = LabelOutcomes(base.names, np.tile(base.score, (150, 1)),
                         np.tile(base.truth, (150, 1)), base.evaluated)
    grid = [0.85, 0.75, 0.6, 0.45]
    choice = rows.choose(target_precision=0.65, delta=0.05, grid=grid)
    level = 0.05 / 4
    expected = []
    for tau in grid:
        fdp, _, _ = fdp_by_hand(base, tau)
        expected.append(hb_bound(float(np.mean(fdp)), 150 * len(fdp), level))
    np.testing.assert_allclose(choice.bounds, expected, atol=2e-5)
    # .85: only row2 {a}: 0; .75: row0 {a}, row2 {a, r}: (0 + 1/2) / 2 = .25;
    # .6: row0 {a}, row2 {a, b, c, r}: .25; .45: + row1 {a, c}: (0 + .5 + 1) / 3
    passing = [tau for tau, b in zip(grid, expected) if b <= 0.35]
    assert choice.threshold == min(passing) == 0.6
    assert choice.risk == pytest.approx(0.25) and choice.accepted == 300
    assert "Hoeffding-Bentkus" in choice.guarantee
    assert "mean false-discovery proportion of the non-empty label sets" in choice.guarantee


def test_label_outcomes_on_a_model_exclude_the_roots():
    torch.manual_seed(0)
    model = tg.compile(DAG, in_features=3, task_dim=4)
    x = torch.randn(20, 3)
    Y = torch.randint(0, 2, (20, 6)).float()
    Y[0, 3] = float("nan")
    rows = label_outcomes(model, [(x, Y)])
    assert rows.evaluated.tolist() == [False, True, True, True, False, True]
    p = model.predict(x)
    probs = torch.stack([p[n].probs for n in NAMES], 1)
    assert torch.allclose(torch.from_numpy(rows.score),
                          label_sets(model.hierarchy, p, threshold=0.5).score)
    assert np.isnan(rows.truth[0, 3]) and rows.truth.shape == (20, 6)
    assert label_outcomes(model, [(x, Y)], roots=[]).evaluated.all()
    with pytest.raises(tg.ArgumentError, match="no binary task 'mm'.*did you mean 'm'"):
        label_outcomes(model, [(x, Y)], roots=["mm"])
    curve = label_set_risk_coverage(model, [(x, Y)], roots=[])
    assert curve.n == 20 and curve.coverage[-1] == 1.0  # every row predicts something at last
    assert probs.shape == (20, 6)


def test_choose_label_threshold_on_a_model_and_its_argument_checks():
    torch.manual_seed(0)
    model = tg.compile(DAG, in_features=3, task_dim=4)
    loader = [(torch.randn(30, 3), torch.ones(30, 6))]  # every label true: no false label
    choice = choose_label_threshold(model, loader, target_precision=0.7)
    assert choice.threshold is not None and choice.risk == 0.0
    assert choice.bound == pytest.approx(1 - (0.05 / 100) ** (1 / 30))  # 30 rows, none wrong
    assert choice.threshold == pytest.approx(0.01)  # all pass: the lowest
    with pytest.raises(tg.ArgumentError, match="target_precision"):
        choose_label_threshold(model, loader, target_precision=1.5)
    with pytest.raises(tg.DataError, match="no row carries an evaluated binary label"):
        choose_label_threshold(model, [(torch.randn(2, 3), torch.full((2, 6), float("nan")))])
