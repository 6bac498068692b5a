"""Early stopping: stop when the monitored metric stops improving, keep the best weights."""

from __future__ import annotations

import pytest
import torch

import taskgraph as tg
from taskgraph.train import EarlyStopping


def _problem(tk):
    """Validation labels are the opposite of the training labels on the same inputs, so
    the validation loss gets worse as soon as training makes progress."""
    h = tk.hierarchy("cell_functions")
    x, y = tk.cell_data(64)
    train = tk.loader(h, x, y, batch_size=16)
    val = tk.loader(h, x, 1 - y, batch_size=64, shuffle=False)
    return h, x, y, train, val


def test_stops_early_and_restores_the_best_weights(tk):
    h, x, y, train, val = _problem(tk)
    kw = dict(val_loader=val, lr=2e-2, seed=0, progress=False, val_metrics=False)
    model = tk.model(h)
    history = tg.fit(model, train, epochs=10, early_stopping=EarlyStopping("val_loss", patience=1),
                     **kw)
    assert history.stopped_early is True
    assert len(history) < 10
    best = history.best("val_loss")
    assert history.best_epoch == best
    assert len(history) == best + 1  # patience 1: one epoch without improvement
    assert history["val_loss"][-1] > history["val_loss"][best - 1]

    # the final weights are the best epoch's: their validation loss is the best one ...
    model.eval()
    with torch.no_grad():
        result = model.loss(model(x), 1 - y, dataset_size=len(x), kl_weight=1.0)
    assert float(result.total) == pytest.approx(history["val_loss"][best - 1], rel=1e-6)
    # ... and they equal those of a run trained for exactly that many epochs
    reference = tk.model(h)
    tg.fit(reference, train, epochs=best, **kw)
    assert tk.same_state(model, reference)


def test_restore_best_false_keeps_the_last_weights(tk):
    h, _, _, train, val = _problem(tk)
    kw = dict(val_loader=val, lr=2e-2, seed=0, progress=False, val_metrics=False)
    model = tk.model(h)
    history = tg.fit(model, train, epochs=10, **kw,
                     early_stopping=EarlyStopping("val_loss", patience=1, restore_best=False))
    assert history.stopped_early
    last = tk.model(h)
    tg.fit(last, train, epochs=len(history), **kw)
    best = tk.model(h)
    tg.fit(best, train, epochs=history.best_epoch, **kw)
    assert tk.same_state(model, last)
    assert not tk.same_state(model, best)


def test_no_stop_while_the_metric_improves(tk):
    h = tk.hierarchy("cell_functions")
    x, y = tk.cell_data(64)
    history = tg.fit(tk.model(h), tk.loader(h, x, y), val_loader=tk.loader(h, x, y, shuffle=False),
                     epochs=4, lr=1e-2, seed=0, progress=False, val_metrics=False,
                     early_stopping="val_loss")
    assert len(history) == 4
    assert history.stopped_early is False
    assert history.best_epoch == history.best("val_loss")


def test_early_stopping_on_the_training_loss_needs_no_val_loader(tk):
    h = tk.hierarchy("cell_functions")
    history = tg.fit(tk.model(h), tk.loader(h, *tk.cell_data(32)), epochs=3, lr=1e-2, seed=0,
                     progress=False, early_stopping=EarlyStopping("loss", patience=2))
    assert history.best_epoch == history.best("loss")


def test_unmeasured_metric_is_reported(tk):
    h, _, _, train, val = _problem(tk)
    with pytest.raises(tg.ArgumentError, match="val_nonsense.*val_loss"):
        tg.fit(tk.model(h), train, val_loader=val, epochs=2, progress=False, val_metrics=False,
               early_stopping="val_nonsense")


@pytest.mark.parametrize("metric,mode", [
    ("val_loss", "min"), ("val_overall", "max"), ("val_auprc_bar", "max"),
    ("diet:accuracy", "max"), ("diet:ece", "min"), ("weight_kg:mse", "min"),
    ("val_violation", "min"),
])
def test_mode_is_inferred_from_the_metric_name(metric, mode):
    assert EarlyStopping(metric).mode == mode


def test_improved_respects_mode_and_min_delta():
    low = EarlyStopping("val_loss", min_delta=0.1)
    assert low.improved(5.0, None)
    assert low.improved(0.85, 1.0) and not low.improved(0.95, 1.0)
    high = EarlyStopping("val_overall", min_delta=0.1)
    assert high.improved(1.15, 1.0) and not high.improved(1.05, 1.0)


@pytest.mark.parametrize("kw,match", [({"patience": 0}, "patience: expected an integer >= 1"),
                                      ({"mode": "up"}, "mode: expected 'min' or 'max'")])
def test_bad_settings_are_refused(kw, match):
    with pytest.raises(tg.ArgumentError, match=f"EarlyStopping: {match}"):
        EarlyStopping("val_loss", **kw)
