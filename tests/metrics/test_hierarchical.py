"""Hierarchical P/R/F1, AU(PRC)-bar and coherence violations on hand-worked examples."""


import networkx as nx
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from taskgraph.errors import DataError
from taskgraph.metrics import (ancestor_closure, auprc_bar, coherence_violation_rate,
                               coherence_violations,
                               hierarchical_prf)

NAN = float("nan")
# a -> b, a -> c, b -> d, c -> d (d has two parents), c -> e
A, B, C, D, E = range(5)
EDGES = [(A, B), (A, C), (B, D), (C, D), (C, E)]


def test_ancestor_closure_through_two_parents():
    sets = np.zeros((2, 5), bool)
    sets[0, D] = True
    sets[1, E] = True
    closed = ancestor_closure(sets, EDGES)
    assert closed[0].tolist() == [True, True, True, True, False]   # d, b, c, a
    assert closed[1].tolist() == [True, False, True, False, True]  # e, c, a


def test_hierarchical_prf_by_hand():
    # example 1: only d labelled positive -> T = {a, b, c, d}; predicted e -> P = {a, c, e}
    # example 2: a, b positive -> T = {a, b}; predicted d -> P = {a, b, c, d}
    y = np.array([[0, 0, 0, 1, 0],
                  [1, 1, 0, 0, 0]])
    p = np.array([[0.1, 0.2, 0.3, 0.4, 0.8],
                  [0.2, 0.1, 0.1, 0.7, 0.1]])
    # |P ∩ T| = 2 + 2, |P| = 3 + 4, |T| = 4 + 2
    out = hierarchical_prf(y, p, EDGES)
    assert out["precision"] == pytest.approx(4 / 7)
    assert out["recall"] == pytest.approx(4 / 6)
    assert out["f1"] == pytest.approx(2 * (4 / 7) * (4 / 6) / (4 / 7 + 4 / 6))
    # without the root a: |P ∩ T| = 1 + 1, |P| = 2 + 3, |T| = 3 + 1
    out = hierarchical_prf(y, p, EDGES, exclude=[A])
    assert (out["precision"], out["recall"]) == pytest.approx((2 / 5, 2 / 4))
    assert out["f1"] == pytest.approx(4 / 9)
    # threshold 0.75: example 1 predicts {a, c, e}, example 2 nothing
    out = hierarchical_prf(y, p, EDGES, threshold=0.75)
    assert (out["precision"], out["recall"]) == pytest.approx((2 / 3, 2 / 6))


def test_hierarchical_prf_missing_labels_restrict_the_sets():
    y = np.array([[0, 0, 0, 1, 0],
                  [1, 1, 0, 0, 0],
                  [1, NAN, 0, 0, -1]])  # b and e unlabelled in example 3
    p = np.array([[0.1, 0.2, 0.3, 0.4, 0.8],
                  [0.2, 0.1, 0.1, 0.7, 0.1],
                  [0.9, 0.9, 0.1, 0.1, 0.9]])
    # example 3 over {a, c, d}: T = {a}; P = {a, b, e} + ancestors {c} -> {a, c}; P ∩ T = {a}
    out = hierarchical_prf(y, p, EDGES)
    assert (out["precision"], out["recall"]) == pytest.approx((5 / 9, 5 / 7))
    assert out["f1"] == pytest.approx(10 / 16)


def test_hierarchical_prf_undefined_and_errors():
    y = np.zeros((2, 5))
    out = hierarchical_prf(y, np.zeros((2, 5)), EDGES)
    assert out == {"precision": None, "recall": None, "f1": None}
    with pytest.raises(DataError, match="cycle"):
        hierarchical_prf(y, y, [(A, B), (B, A)])
    with pytest.raises(DataError, match="shape"):
        hierarchical_prf(y, np.zeros((2, 4)), EDGES)
    with pytest.raises(DataError, match="0, 1"):
        hierarchical_prf(y + 2, y, EDGES)


def test_hierarchical_prf_matches_a_loop_over_examples():
    rng = np.random.default_rng(0)
    T = 12
    g = nx.gnp_random_graph(T, 0.25, seed=3, directed=True)
    dag = nx.DiGraph([(u, v) for u, v in g.edges if u < v])
    dag.add_nodes_from(range(T))
    y = (rng.random((30, T)) < 0.3).astype(float)
    y[rng.random((30, T)) < 0.2] = NAN
    p = rng.random((30, T))
    excluded = {0, 1}
    both = n_pred = n_true = 0
    for i in range(30):
        labelled = {t for t in range(T) if not np.isnan(y[i, t]) and t not in excluded}
        pred, true = set(), set()
        for t in range(T):
            if p[i, t] >= 0.5:
                pred |= {t} | nx.ancestors(dag, t)
            if y[i, t] == 1:
                true |= {t} | nx.ancestors(dag, t)
        pred, true = pred & labelled, true & labelled
        both, n_pred, n_true = both + len(pred & true), n_pred + len(pred), n_true + len(true)
    out = hierarchical_prf(y, p, list(dag.edges), exclude=excluded)
    assert out["precision"] == pytest.approx(both / n_pred)
    assert out["recall"] == pytest.approx(both / n_true)


def test_auprc_bar_is_sklearn_micro_ap_without_roots():
    rng = np.random.default_rng(2)
    y = (rng.random((40, 6)) < 0.3).astype(float)
    y[:, 0] = 1  # the root: always positive
    p = rng.random((40, 6))
    expected = average_precision_score(y[:, 1:], p[:, 1:], average="micro")
    assert auprc_bar(y, p, exclude=[0]) == pytest.approx(expected)
    p2 = p.copy()
    p2[:, 0] = 0.0  # the excluded root's scores do not matter
    assert auprc_bar(y, p2, exclude=[0]) == pytest.approx(expected)
    assert auprc_bar(y, p, exclude=[]) == pytest.approx(
        average_precision_score(y, p, average="micro"))


def test_auprc_bar_ignores_missing_labels():
    rng = np.random.default_rng(3)
    y = (rng.random((40, 5)) < 0.4).astype(float)
    p = rng.random((40, 5))
    missing = rng.random((40, 5)) < 0.25
    y_missing = np.where(missing, -1.0, y)
    keep = ~missing
    keep[:, 0] = False
    expected = average_precision_score(y[keep], p[keep])
    assert auprc_bar(y_missing, p, exclude=[0]) == pytest.approx(expected)
    p_shuffled = np.where(missing, rng.random((40, 5)), p)
    assert auprc_bar(y_missing, p_shuffled, exclude=[0]) == pytest.approx(expected)
    assert auprc_bar(np.ones((3, 2)), np.ones((3, 2))) is None  # one class only


def test_coherence_violation_rate_by_hand():
    p = np.array([[0.9, 0.5, 0.6, 0.4, 0.7],          # c < e
                  [0.3, 0.4, 0.2, 0.1, 0.2],          # a < b (c = e is no violation)
                  [0.5, 0.5 + 1e-8, 0.5, 0.6, 0.4]])  # b < d, c < d (a < b within tol)
    # 5 edges x 3 examples, 4 violations
    assert coherence_violations(p, EDGES) == 4
    assert coherence_violations(p, EDGES, tol=0.15) == 0  # the largest gap is 0.1
    assert coherence_violation_rate(p, EDGES) == pytest.approx(4 / 15)
    assert coherence_violation_rate(p, []) is None and coherence_violations(p, []) == 0


def test_long_chain():
    T, N = 4000, 200
    chain = [(t, t + 1) for t in range(T - 1)]  # the deepest hierarchy: sets of size T
    rng = np.random.default_rng(4)
    y = (rng.random((N, T)) < 0.01).astype(float)
    p = rng.random((N, T)) * 0.51
    out = hierarchical_prf(y, p, chain, exclude=[0])
    assert coherence_violation_rate(p, chain) > 0
    assert 0 <= out["precision"] <= 1 and 0 <= out["recall"] <= 1


def test_auprc_bar_takes_excluded_columns_as_an_array():
    Y = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1]], dtype=float)
    P = np.array([[0.9, 0.2, 0.7], [0.1, 0.8, 0.6], [0.7, 0.4, 0.3], [0.2, 0.1, 0.9]])
    expected = average_precision_score(Y[:, 1:], P[:, 1:], average="micro")
    assert auprc_bar(Y, P, exclude=np.array([0])) == pytest.approx(expected)
    assert auprc_bar(Y, P, exclude=[0]) == pytest.approx(expected)
