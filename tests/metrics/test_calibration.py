"""ECE, Brier and the column-wise calibration helpers, against hand-worked values and
scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss

from taskgraph.errors import ArgumentError, DataError
from taskgraph.metrics import calibration_bins, expected_calibration_error, multiclass_brier_score
from taskgraph.metrics.calibration import binary_calibration_columns


def reference_ece(y, p, n_bins=15):
    """Explicit loop over bins [k/M, (k+1)/M), the last one closed at 1."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    total = 0.0
    for k in range(n_bins):
        lo, hi = k / n_bins, (k + 1) / n_bins
        inside = [(yi, pi) for yi, pi in zip(y, p)
                  if lo <= pi < hi or (k == n_bins - 1 and pi == 1.0)]
        if inside:
            acc = sum(yi for yi, _ in inside) / len(inside)
            conf = sum(pi for _, pi in inside) / len(inside)
            total += len(inside) / len(y) * abs(acc - conf)
    return total


def test_perfectly_calibrated_is_zero():
    # 10 at 0.1 with 1 positive, 4 at 0.5 with 2, 5 at 0.8 with 4
    p = [0.1] * 10 + [0.5] * 4 + [0.8] * 5
    y = [1] + [0] * 9 + [1, 1, 0, 0] + [1, 1, 1, 1, 0]
    assert expected_calibration_error(y, p) == pytest.approx(0.0, abs=1e-12)


def test_miscalibrated_by_hand():
    # 10 at 0.9 with half positive: |0.5 - 0.9| = 0.4; 5 at 0.2, none positive: 0.2
    p = [0.9] * 10 + [0.2] * 5
    y = [1] * 5 + [0] * 5 + [0] * 5
    expected = 10 / 15 * 0.4 + 5 / 15 * 0.2
    assert expected_calibration_error(y, p) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(1 / 3)


def test_reliability_bins_and_their_ece_by_hand():
    """What reliability diagrams draw, counted by hand on 4 bins of width 1/4."""
    outcome = [1, 0, 0, 1, 1, 1, 0]
    conf = [0.1, 0.2, 0.25, 0.6, 0.6, 1.0, 0.99]  # 0.25 opens bin 1; 1.0 closes bin 3
    b = calibration_bins(outcome, conf, n_bins=4)
    assert b["count"].tolist() == [2, 1, 2, 2]
    assert b["accuracy"].tolist() == pytest.approx([0.5, 0.0, 1.0, 0.5])
    assert b["confidence"].tolist() == pytest.approx([0.15, 0.25, 0.6, 0.995])
    assert b["edges"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    # ECE = sum over bins of |sum(o) - sum(c)| / N = (|1-.3| + |0-.25| + |2-1.2| + |1-1.99|)/7
    ece = (0.7 + 0.25 + 0.8 + 0.99) / 7
    assert b["ece"] == pytest.approx(ece)
    assert expected_calibration_error(outcome, conf, n_bins=4) == pytest.approx(ece)
    empty = calibration_bins([1, 0], [0.9, 0.8], n_bins=2)
    assert empty["count"].tolist() == [0, 2] and np.isnan(empty["accuracy"][0])


def test_overconfident_everywhere_equals_mean_gap():
    # one bin per value, each bin's accuracy 0: ECE = mean confidence
    p = np.array([0.95, 0.75, 0.55])
    assert expected_calibration_error([0, 0, 0], p) == pytest.approx(p.mean())


def test_matches_explicit_loop_on_random_data():
    rng = np.random.default_rng(0)
    for n_bins in (1, 5, 15, 40):
        p = rng.random(300)
        p[:20] = np.round(p[:20] * n_bins) / n_bins  # values on bin edges, 0 and 1
        y = (rng.random(300) < p ** 2).astype(int)
        assert expected_calibration_error(y, p, n_bins=n_bins) == pytest.approx(
            reference_ece(y, p, n_bins), abs=1e-12)


def test_multiclass_top_label_by_hand():
    probs = np.array([[0.70, 0.20, 0.10],   # top 0, y 0: right, conf .70 (bin 10)
                      [0.10, 0.60, 0.30],   # top 1, y 2: wrong, conf .60 (bin 9)
                      [0.65, 0.30, 0.05],   # top 0, y 1: wrong, conf .65 (bin 9)
                      [0.40, 0.35, 0.25],   # top 0, y 0: right, conf .40 (bin 6)
                      [0.05, 0.05, 0.90]])  # top 2, y 2: right, conf .90 (bin 13)
    y = [0, 2, 1, 0, 2]
    # bin 9: |0 - (.60 + .65)| summed gap 1.25; others .30, .60, .10
    expected = (0.30 + 1.25 + 0.60 + 0.10) / 5
    assert expected_calibration_error(y, probs) == pytest.approx(expected)


def test_bad_input():
    with pytest.raises(ArgumentError, match="n_bins: expected a positive integer"):
        expected_calibration_error([0, 1], [0.2, 0.8], n_bins=0)
    with pytest.raises(DataError, match="0 or 1"):
        expected_calibration_error([0, 2], [0.2, 0.8])
    with pytest.raises(DataError, match="shape"):
        expected_calibration_error([0, 1, 1], [0.2, 0.8])
    with pytest.raises(DataError, match="no examples"):
        expected_calibration_error([], [])


def test_multiclass_brier():
    y = np.array([0, 2, 1])
    p = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.3, 0.3, 0.4]])
    by_hand = ((0.4 ** 2 + 0.3 ** 2 + 0.1 ** 2) + (0.2 ** 2 + 0.2 ** 2 + 0.4 ** 2)
               + (0.3 ** 2 + 0.7 ** 2 + 0.4 ** 2)) / 3
    assert multiclass_brier_score(y, p) == pytest.approx(by_hand)
    try:  # scikit-learn >= 1.7 has the multiclass Brier score
        reference = brier_score_loss(y, p, labels=[0, 1, 2])
    except (TypeError, ValueError):
        reference = None
    if reference is not None:
        assert multiclass_brier_score(y, p) == pytest.approx(reference)
    with pytest.raises(DataError):
        multiclass_brier_score([3], [[0.5, 0.5]])


def test_binary_columns_match_sklearn_per_column():
    rng = np.random.default_rng(1)
    y = (rng.random((80, 6)) < 0.4).astype(float)
    p = rng.random((80, 6))
    p[0, 0], p[1, 0] = 0.0, 1.0  # clipping at the ends, as log_loss does
    known = rng.random((80, 6)) < 0.7
    known[:, 5] = False  # a column without labels
    out = binary_calibration_columns(y, p, known)
    for j in range(5):
        k = known[:, j]
        assert out["nll"][j] == pytest.approx(log_loss(y[k, j], p[k, j], labels=[0, 1]))
        assert out["brier"][j] == pytest.approx(brier_score_loss(y[k, j], p[k, j], pos_label=1))
        assert out["ece"][j] == pytest.approx(reference_ece(y[k, j], p[k, j]), abs=1e-12)
    assert np.isnan([out["nll"][5], out["brier"][5], out["ece"][5]]).all()
