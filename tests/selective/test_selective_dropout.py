"""MC dropout through selective prediction: every selective function passes ``dropout=``
on to ``predict``, so its result is that of ``predict(..., dropout=True)`` with the same
draws, differs from the synapse draws (``dropout=False``), is the default for a model
with dropout, and refuses dropout without samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import taskgraph as tg
from taskgraph.errors import ArgumentError
from taskgraph.selective import (LabelDag, choose_confidence, choose_label_threshold, climb,
                                 hierarchical_risk_coverage, label_set_predict,
                                 label_set_risk_coverage, label_sets, path_outcomes,
                                 selective_predict)

DROPOUT = {"hidden": [16], "dropout": 0.5}


def animals():
    torch.manual_seed(0)
    model = tg.compile("hierarchies/animals.yaml", in_features=3, task_dim=4,
                       encoder_spec=DROPOUT)
    Y = torch.tensor([[1, 1, 0, 4.], [1, 0, 2, 600], [0, 1, 3, 5], [1, 2, 1, 20]] * 10)
    return model, [(torch.randn(40, 3), Y)]


def cells():
    torch.manual_seed(0)
    model = tg.compile("hierarchies/cell_functions.yaml", in_features=4, task_dim=4,
                       encoder_spec=DROPOUT)
    return model, [(torch.randn(30, 4), torch.randint(0, 2, (30, 7)).float())]


def drawn(fn, *args, seed=3, **kwargs):
    """``fn`` called after seeding torch: the same seed gives the same draws."""
    torch.manual_seed(seed)
    return fn(*args, **kwargs)


def test_selective_predict_climbs_the_mc_dropout_prediction():
    model, [(x, _)] = animals()
    out = drawn(selective_predict, model, x, confidence=0.4, samples=8, dropout=True)
    pred = drawn(model.predict, x, samples=8, dropout=True)
    expected = climb(model.hierarchy, pred, confidence=0.4)
    for name, sel in out.items():
        torch.testing.assert_close(sel.confidence, expected[name].confidence)
        assert torch.equal(sel.depth, expected[name].depth)
    plain = drawn(selective_predict, model, x, confidence=0.4, samples=8, dropout=False)
    assert any(not torch.equal(plain[n].confidence, out[n].confidence) for n in out)
    default = drawn(selective_predict, model, x, confidence=0.4, samples=8)
    assert all(torch.equal(default[n].confidence, out[n].confidence) for n in out)


def test_path_outcomes_and_the_threshold_choice_use_mc_dropout():
    model, loader = animals()
    rows = drawn(path_outcomes, model, loader, samples=8, dropout=True)["species"]
    plain = drawn(path_outcomes, model, loader, samples=8, dropout=False)["species"]
    assert not np.array_equal(rows.confidence, plain.confidence)
    curve = drawn(hierarchical_risk_coverage, model, loader, samples=8, dropout=True)
    np.testing.assert_allclose(curve["species"].coverage, rows.risk_coverage().coverage)
    choice = drawn(choose_confidence, model, loader, target_accuracy=0.05, samples=8,
                   dropout=True, grid=[0.9, 0.5, 0.3])["species"]
    by_rows = rows.choose(target_accuracy=0.05, delta=0.05, grid=[0.9, 0.5, 0.3],
                          method="bonferroni")
    np.testing.assert_allclose(choice.bounds, by_rows.bounds)


def test_label_sets_use_mc_dropout():
    model, [(x, y)] = cells()
    out = drawn(label_set_predict, model, x, threshold=0.5, samples=8, dropout=True)
    pred = drawn(model.predict, x, samples=8, dropout=True)
    expected = label_sets(LabelDag(model.hierarchy), pred, threshold=0.5)
    torch.testing.assert_close(out.score, expected.score)
    plain = drawn(label_set_predict, model, x, threshold=0.5, samples=8, dropout=False)
    assert not torch.equal(plain.score, out.score)
    curve = drawn(label_set_risk_coverage, model, [(x, y)], samples=8, dropout=True)
    assert curve.n == 30
    choice = drawn(choose_label_threshold, model, [(x, y)], target_precision=0.05,
                   samples=8, dropout=True)
    assert choice.threshold is not None


@pytest.mark.parametrize("call", [
    lambda m, d: selective_predict(m, d[0][0], confidence=0.5, dropout=True),
    lambda m, d: choose_confidence(m, d, dropout=True),
    lambda m, d: hierarchical_risk_coverage(m, d, dropout=True),
])
def test_dropout_without_samples_is_refused(call):
    model, loader = animals()
    with pytest.raises(ArgumentError, match="dropout=True needs samples >= 1"):
        call(model, loader)


def test_dropout_without_a_dropout_module_is_refused():
    model = tg.compile("hierarchies/cell_functions.yaml", in_features=4, task_dim=4)
    with pytest.raises(ArgumentError, match="no dropout module"):
        label_set_predict(model, torch.randn(2, 4), threshold=0.5, samples=2, dropout=True)
