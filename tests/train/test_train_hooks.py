"""``fit``'s hooks: a validation metric of your own, and callbacks around each epoch."""

from __future__ import annotations

import torch

import taskgraph as tg
from taskgraph.train import Callback
from taskgraph.train.state import read_checkpoint


def test_val_metric_joins_the_record_and_early_stopping_watches_it(tk):
    """A metric that reads 0.1, 0.5, 0.3, 0.2 over the epochs: watched with patience 2 its
    best epoch is 2, training stops after epoch 4, and the model is the one trained for
    exactly 2 epochs."""
    h = tk.hierarchy("cell_functions")
    x, y = tk.cell_data(32)
    val = tk.loader(h, x, y, shuffle=False)
    scores = iter([0.1, 0.5, 0.3, 0.2, 0.9])
    calls = []

    def metric(model, loader):
        calls.append((model.training, loader is val, torch.is_grad_enabled()))
        return {"val_score": next(scores)}

    kw = dict(lr=1e-2, seed=0, progress=False)
    model = tk.model(h)
    history = tg.fit(model, tk.loader(h, x, y), val_loader=val, epochs=6, val_metrics=False,
                     val_metric=metric, early_stopping=tg.EarlyStopping("val_score", patience=2),
                     **kw)
    assert history["val_score"] == [0.1, 0.5, 0.3, 0.2]
    assert history.best_epoch == 2 and history.stopped_early
    assert "val_loss" in history.keys()
    assert calls == [(False, True, False)] * 4  # eval mode, the loader, no gradients
    assert model.training  # fit leaves the mode of training
    reference = tk.model(h)
    tg.fit(reference, tk.loader(h, x, y), epochs=2, **kw)
    assert tk.same_state(model, reference)


class _Log(Callback):
    def __init__(self, folder):
        self.events, self.folder = [], folder

    def on_epoch_start(self, state, epoch):
        self.events.append(("start", epoch, state.epoch, len(state.history)))

    def on_epoch_end(self, state, record):
        saved = read_checkpoint(self.folder / "last.pt")["epoch"]
        self.events.append(("end", record["epoch"], state.epoch, saved))


def test_callbacks_run_around_every_epoch(tk, tmp_path):
    """start(e) sees e - 1 finished epochs; end(e) sees e, with epoch e's checkpoint
    already written."""
    h = tk.hierarchy("cell_functions")
    log = _Log(tmp_path)
    tg.fit(tk.model(h), tk.loader(h, *tk.cell_data(16)), epochs=2, seed=0, progress=False,
           checkpoint_dir=tmp_path, callbacks=[log])
    assert log.events == [("start", 1, 0, 0), ("end", 1, 1, 1),
                          ("start", 2, 1, 1), ("end", 2, 2, 2)]
    # a resumed run calls them for the epochs it trains only
    log.events.clear()
    tg.fit(tk.model(h), tk.loader(h, *tk.cell_data(16)), epochs=3, seed=0, progress=False,
           checkpoint_dir=tmp_path, resume=True, callbacks=[log])
    assert log.events == [("start", 3, 2, 2), ("end", 3, 3, 3)]
