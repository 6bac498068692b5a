"""Selective prediction: risk–coverage, AURC and error-detection AUROC, against values
worked out by hand, brute force over the orders of tied examples, and scikit-learn."""

import itertools

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from taskgraph.errors import DataError
from taskgraph.metrics import aurc, error_detection_auroc, risk_coverage
from taskgraph.metrics.selective import aurc_columns, error_auroc_columns, risk_columns


def test_risk_coverage_by_hand():
    errors = [1, 0, 0, 1, 0]
    uncertainty = [0.9, 0.1, 0.3, 0.5, 0.2]
    # most certain first: .1 right, .2 right, .3 right, .5 wrong, .9 wrong
    coverage, risk = risk_coverage(errors, uncertainty)
    assert coverage.tolist() == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert risk.tolist() == pytest.approx([0, 0, 0, 1 / 4, 2 / 5])
    assert aurc(errors, uncertainty) == pytest.approx((1 / 4 + 2 / 5) / 5)  # 0.13


def test_ties_share_their_errors():
    # .1 right | .4 .4 .4 with one error among three | .8 wrong
    errors = [0, 1, 0, 0, 1]
    uncertainty = [0.1, 0.4, 0.4, 0.4, 0.8]
    _, risk = risk_coverage(errors, uncertainty)
    expected = [0, (1 / 3) / 2, (2 / 3) / 3, 1 / 4, 2 / 5]
    assert risk.tolist() == pytest.approx(expected)
    assert aurc(errors, uncertainty) == pytest.approx(np.mean(expected))
    # the input order of tied examples does not matter
    assert aurc([0, 0, 0, 1, 1], [0.1, 0.4, 0.4, 0.4, 0.8]) == pytest.approx(np.mean(expected))
    # a constant score: a flat curve at the error rate
    assert risk_coverage([1, 0, 1, 0], [0.3] * 4)[1].tolist() == pytest.approx([0.5] * 4)


def test_tied_curve_is_the_mean_over_every_order_of_the_ties():
    errors = np.array([1, 0, 1, 0, 0, 1])
    uncertainty = np.array([0.2, 0.2, 0.5, 0.5, 0.5, 0.7])
    curves = []
    for perm in itertools.permutations(range(6)):  # every input order, then a stable sort
        perm = np.array(perm)
        order = perm[np.argsort(uncertainty[perm], kind="stable")]
        curves.append(np.cumsum(errors[order]) / np.arange(1, 7))
    assert risk_coverage(errors, uncertainty)[1] == pytest.approx(np.mean(curves, 0))


def test_perfect_ranking_reaches_the_lowest_area():
    errors = np.array([0, 0, 0, 1, 1])
    uncertainty = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    n, right = 5, 3
    best = np.mean([max(0, k - right) / k for k in range(1, n + 1)])  # (1/4 + 2/5) / 5
    assert aurc(errors, uncertainty) == pytest.approx(best) == pytest.approx(0.13)
    assert aurc(errors, -uncertainty) > aurc(errors, uncertainty)  # the reversed ranking


def test_error_detection_auroc_by_hand_and_sklearn():
    # wrong .9, .5 against right .1, .3, .2: every pair ordered
    assert error_detection_auroc([1, 0, 0, 1, 0], [0.9, 0.1, 0.3, 0.5, 0.2]) == 1.0
    # wrong .5 against right .5 (tie: one half) and .2 (one): (0.5 + 1) / 2
    assert error_detection_auroc([1, 0, 0], [0.5, 0.5, 0.2]) == pytest.approx(0.75)
    assert error_detection_auroc([0, 0, 0], [0.1, 0.2, 0.3]) is None
    assert error_detection_auroc([1, 1], [0.1, 0.2]) is None
    rng = np.random.default_rng(3)
    e = rng.integers(0, 2, 40)
    u = np.round(rng.random(40), 1)  # ties
    assert error_detection_auroc(e, u) == pytest.approx(roc_auc_score(e, u))


def test_columns_equal_one_call_per_column():
    rng = np.random.default_rng(0)
    N, C = 60, 7
    errors = (rng.random((N, C)) < 0.3).astype(float)
    uncertainty = np.round(rng.random((N, C)), 1)  # many ties
    known = rng.random((N, C)) > 0.25
    known[:, 5] = False  # no labelled entry
    errors[:, 6] = 0.0  # never wrong: AUROC undefined
    area = aurc_columns(errors, uncertainty, known)
    both, detect = aurc_columns(errors, uncertainty, known, auroc=True)
    auroc = error_auroc_columns(errors, uncertainty, known)
    curves = risk_columns(errors, uncertainty, known)
    assert np.array_equal(area, both, equal_nan=True)
    assert np.array_equal(auroc, detect, equal_nan=True)
    for j in range(C):
        k = known[:, j]
        if not k.any():
            assert np.isnan(area[j]) and np.isnan(auroc[j]) and np.isnan(curves[:, j]).all()
            continue
        e, u = errors[k, j], uncertainty[k, j]
        assert area[j] == pytest.approx(aurc(e, u))
        assert curves[:k.sum(), j] == pytest.approx(risk_coverage(e, u)[1])
        assert np.isnan(curves[k.sum():, j]).all()
        if 0 < e.sum() < e.size:
            assert auroc[j] == pytest.approx(roc_auc_score(e, u))
        else:
            assert np.isnan(auroc[j])


def test_columns_without_ties_match_the_definition_written_out():
    rng = np.random.default_rng(1)
    errors = (rng.random((200, 3)) < 0.4).astype(float)
    uncertainty = rng.random((200, 3))
    known = np.ones((200, 3), dtype=bool)
    area = aurc_columns(errors, uncertainty, known)
    for j in range(3):
        sorted_errors = errors[np.argsort(uncertainty[:, j]), j]
        risk = np.cumsum(sorted_errors) / np.arange(1, 201)
        assert area[j] == pytest.approx(risk.mean())


@pytest.mark.parametrize("errors, uncertainty, message", [
    ([0, 1], [0.1], "same length, got 2 and 1"),
    ([], [], "no examples"),
    ([0, 2], [0.1, 0.2], "errors must be 0 .* or 1 .*got 2 at position 1"),
    ([0, 1], [0.1, float("nan")], "uncertainty must be finite, got nan at position 1"),
])
def test_bad_input_raises_data_error(errors, uncertainty, message):
    for function in (risk_coverage, aurc, error_detection_auroc):
        with pytest.raises(DataError, match=message):
            function(errors, uncertainty)
