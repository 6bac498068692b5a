"""The threshold sweep's risk–coverage area against the ranking AURC of
:mod:`taskgraph.metrics.selective`: equal without ties, and each convention's value on a
tie computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from taskgraph.metrics.selective import aurc
from taskgraph.selective.sweep import Sweep


def one_level(confidence, errors) -> Sweep:
    """A one-level predictor: every row is one event that accepts it with its error."""
    n = len(errors)
    return Sweep(np.asarray(confidence), accepted=np.ones(n), loss=np.asarray(errors, float),
                 size=np.ones(n), n=n)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_without_ties_the_two_areas_agree(seed):
    rng = np.random.default_rng(seed)
    conf = rng.permutation(200) / 200.0 + 0.001  # distinct, exact in float32 order
    errors = (rng.random(200) < 0.3).astype(float)
    assert one_level(conf, errors).curve().aurc == pytest.approx(aurc(errors, -conf),
                                                                 rel=1e-12)


def test_a_tie_by_hand():
    # rows: right at confidence 0.9, then (wrong, right) tied at 0.5
    conf, errors = [0.9, 0.5, 0.5], [0, 1, 0]
    curve = one_level(conf, errors).curve()
    assert curve.coverage.tolist() == pytest.approx([1 / 3, 1.0])
    assert curve.risk.tolist() == pytest.approx([0.0, 1 / 3])
    assert curve.aurc == pytest.approx(2 / 9)  # 0 * 1/3 + 1/3 * 2/3
    # ranking: the tied run's errors become 1/2 each: risk@k = 0, 1/4, 1/3
    assert aurc(errors, [-c for c in conf]) == pytest.approx(7 / 36)


def test_events_that_only_change_the_loss_move_no_coverage():
    # row 0 accepted at 0.9 (right); at 0.7 it goes a level deeper and becomes wrong
    s = Sweep(np.array([0.9, 0.7]), accepted=np.array([1.0, 0.0]),
              loss=np.array([0.0, 1.0]), size=np.ones(2), n=2)
    curve = s.curve()
    assert curve.coverage.tolist() == [0.5, 0.5]
    assert curve.risk.tolist() == [0.0, 1.0]
    assert curve.aurc == 0.0  # the deeper, wrong point adds no coverage
    assert curve.size.tolist() == [1.0, 2.0]
