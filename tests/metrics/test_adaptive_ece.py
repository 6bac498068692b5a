"""ECE with equal-mass (adaptive) bins, against values worked out by hand and a
reference written out with np.array_split."""

import itertools

import numpy as np
import pytest

from taskgraph.errors import ArgumentError
from taskgraph.metrics import expected_calibration_error
from taskgraph.metrics.calibration import equal_mass_ece_columns


def reference(outcome, confidence, n_bins=15):
    """The definition without ties: sort, np.array_split, weigh each bin's gap."""
    order = np.argsort(confidence, kind="stable")
    total = 0.0
    for part in np.array_split(order, n_bins):
        if part.size:
            total += part.size / len(order) * abs(outcome[part].mean() - confidence[part].mean())
    return total


def test_six_examples_three_bins_by_hand():
    conf = np.array([0.1, 0.4, 0.35, 0.8, 0.9, 0.7])
    y = np.array([0, 1, 0, 1, 1, 0])
    # sorted: .1 (0), .35 (0) | .4 (1), .7 (0) | .8 (1), .9 (1)
    # |0 - .225| + |.5 - .55| + |1 - .85|, each bin weighed 2/6
    expected = (0.225 + 0.05 + 0.15) / 3
    assert expected_calibration_error(y, conf, n_bins=3, binning="equal_mass") == \
        pytest.approx(expected)
    # equal width (15 bins) puts every example in its own bin here: a different number
    assert expected_calibration_error(y, conf) == pytest.approx(
        np.mean(np.abs(y - conf)))


def test_uneven_split_gives_the_first_bins_one_more():
    conf = np.array([0.2, 0.3, 0.6, 0.7, 0.9])
    y = np.array([0, 1, 0, 1, 1])
    # array_split of 5 into 2: sizes 3 and 2 -> {.2, .3, .6}, {.7, .9}
    first = abs(1 / 3 - (0.2 + 0.3 + 0.6) / 3)
    second = abs(1.0 - 0.8)
    expected = 3 / 5 * first + 2 / 5 * second
    assert expected_calibration_error(y, conf, n_bins=2, binning="equal_mass") == \
        pytest.approx(expected)


def test_fewer_examples_than_bins_and_one_bin():
    conf = np.array([0.9, 0.2, 0.6])
    y = np.array([1, 1, 0])
    # 15 bins for 3 examples: one example a bin, the mean |o - c|
    assert expected_calibration_error(y, conf, binning="equal_mass") == \
        pytest.approx((0.1 + 0.8 + 0.6) / 3)
    # one bin: |mean outcome - mean confidence|
    assert expected_calibration_error(y, conf, n_bins=1, binning="equal_mass") == \
        pytest.approx(abs(2 / 3 - 1.7 / 3))


def test_multiclass_uses_top_label_confidence():
    probs = np.array([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.2, 0.3, 0.5], [0.4, 0.35, 0.25]])
    y = np.array([0, 0, 2, 1])
    # top labels 0, 1, 2, 0: right, wrong, right, wrong; confidences .7, .6, .5, .4
    # 2 bins by confidence: {.4 wrong, .5 right} | {.6 wrong, .7 right}
    expected = 0.5 * abs(0.5 - 0.45) + 0.5 * abs(0.5 - 0.65)
    assert expected_calibration_error(y, probs, n_bins=2, binning="equal_mass") == \
        pytest.approx(expected)


def test_ties_are_shared_evenly_and_input_order_does_not_matter():
    # four tied confidences, two positives: a split by input order would put both
    # positives in one bin (ECE 0.5); spread evenly each bin holds one, ECE 0
    y = np.array([1, 1, 0, 0])
    conf = np.full(4, 0.5)
    assert expected_calibration_error(y, conf, n_bins=2, binning="equal_mass") == \
        pytest.approx(0.0)
    # a run across a bin edge: .2 | .6 .6 | .9; each bin takes one half of the .6 run,
    # whose total o - c is (1 - .6) + (0 - .6) = -.2
    y = np.array([0, 1, 0, 1])
    conf = np.array([0.2, 0.6, 0.6, 0.9])
    expected = (abs(-0.2 - 0.1) + abs(-0.1 + 0.1)) / 4
    results = {round(expected_calibration_error(y[list(p)], conf[list(p)], n_bins=2,
                                                binning="equal_mass"), 12)
               for p in itertools.permutations(range(4))}
    assert results == {round(expected, 12)}


def test_random_data_without_ties_match_the_reference():
    rng = np.random.default_rng(0)
    for n, bins in ((97, 15), (500, 10), (16, 15)):
        conf = rng.random(n)
        y = (rng.random(n) < conf ** 2).astype(float)
        assert expected_calibration_error(y, conf, n_bins=bins, binning="equal_mass") == \
            pytest.approx(reference(y, conf, bins))


def test_columns_equal_one_call_per_column():
    rng = np.random.default_rng(2)
    N, C = 80, 6
    outcome = (rng.random((N, C)) < 0.3).astype(float)
    conf = rng.random((N, C))
    known = rng.random((N, C)) > 0.3
    known[:, 4] = False
    got = equal_mass_ece_columns(outcome, conf, known, n_bins=7)
    for j in range(C):
        k = known[:, j]
        if k.any():
            assert got[j] == pytest.approx(reference(outcome[k, j], conf[k, j], 7))
        else:
            assert np.isnan(got[j])


def test_bad_binning_and_bins():
    with pytest.raises(ArgumentError, match="binning: expected one of 'equal_width', "
                                            "'equal_mass', got 'quantile'"):
        expected_calibration_error([0, 1], [0.2, 0.8], binning="quantile")
    with pytest.raises(ArgumentError, match="n_bins: expected a positive integer, got 0"):
        expected_calibration_error([0, 1], [0.2, 0.8], n_bins=0, binning="equal_mass")
