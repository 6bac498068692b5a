"""``fit(weight_average=...)``: an exponential moving average of the weights."""

from __future__ import annotations

import pytest
import torch

import taskgraph as tg
from taskgraph.train.state import read_checkpoint


def _steps_recorded(model: torch.nn.Module, lr: float = 0.1):
    """SGD that keeps a copy of every parameter after each of its steps."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    seen: list[list[torch.Tensor]] = []
    optimizer.register_step_post_hook(
        lambda *_: seen.append([p.detach().clone() for p in model.parameters()]))
    return optimizer, seen


def test_the_model_ends_with_the_moving_average_of_its_steps(tk):
    """Two optimizer steps (32 examples, batches of 16) with decay 0.75: the average
    starts at the first step's weights and moves a quarter of the way to the second's."""
    h = tk.hierarchy("cell_functions")
    model = tk.model(h)
    optimizer, seen = _steps_recorded(model)
    tg.fit(model, tk.loader(h, *tk.cell_data(32), batch_size=16), epochs=1,
           optimizer=optimizer, weight_average=0.75, seed=0, progress=False)
    assert len(seen) == 2
    first, second = seen
    for p, a, b in zip(model.parameters(), first, second):
        torch.testing.assert_close(p.detach(), 0.75 * a + 0.25 * b)
    assert any(not torch.allclose(a, b) for a, b in zip(first, second))  # the steps moved


def _validation_loss(model, x, y) -> float:
    model.eval()
    with torch.no_grad():
        return float(model.loss(model(x), y, dataset_size=len(x), kl_weight=1.0).total)


def test_validation_and_the_best_weights_are_the_average(tk):
    """Validation labels are the opposite of the training labels, so the validation loss
    gets worse as training improves and the first epoch is the best; the model ends with
    the weights validated then: the average's, whose loss is the recorded one."""
    h = tk.hierarchy("cell_functions")
    x, y = tk.cell_data(64)
    val = tk.loader(h, x, 1 - y, batch_size=64, shuffle=False)
    kw = dict(val_loader=val, lr=2e-2, seed=0, progress=False, val_metrics=False,
              weight_average=0.9)
    model = tk.model(h)
    history = tg.fit(model, tk.loader(h, x, y), epochs=4,
                     early_stopping=tg.EarlyStopping("val_loss", patience=3), **kw)
    best = history.best_epoch
    assert best == history.best("val_loss")
    assert _validation_loss(model, x, 1 - y) == pytest.approx(history["val_loss"][best - 1],
                                                              rel=1e-6)
    # without early stopping the final average is validated and kept
    last = tk.model(h)
    history = tg.fit(last, tk.loader(h, x, y), epochs=2, **kw)
    assert _validation_loss(last, x, 1 - y) == pytest.approx(history["val_loss"][-1], rel=1e-6)
    raw = tk.model(h)
    tg.fit(raw, tk.loader(h, x, y), epochs=2, **{**kw, "weight_average": None})
    assert not tk.same_state(raw, last)


def test_resume_with_an_average_continues_exactly(tk, tmp_path):
    h = tk.hierarchy("animals")
    x, y = tk.animals_data(32)
    kw = dict(weight_average=0.8, seed=3, progress=False, lr=1e-2, grad_noise=0.05)

    def model():
        return tk.model(h, encoder_spec={"hidden": [8], "dropout": 0.2})

    straight = model()
    tg.fit(straight, tk.loader(h, x, y, batch_size=8), epochs=4,
           checkpoint_dir=tmp_path / "straight", **kw)
    tg.fit(model(), tk.loader(h, x, y, batch_size=8), epochs=2,
           checkpoint_dir=tmp_path / "split", **kw)
    resumed = model()
    tg.fit(resumed, tk.loader(h, x, y, batch_size=8), epochs=4,
           checkpoint_dir=tmp_path / "split", resume=True, **kw)
    assert tk.same_state(resumed, straight)
    a = read_checkpoint(tmp_path / "split" / "last.pt")["average"]
    b = read_checkpoint(tmp_path / "straight" / "last.pt")["average"]
    assert a.keys() == b.keys() and int(a["n_averaged"]) == 16  # 4 epochs x 4 steps
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resuming_a_run_without_an_average_with_one_is_refused(tk, tmp_path):
    h = tk.hierarchy("cell_functions")
    loader = tk.loader(h, *tk.cell_data(16))
    tg.fit(tk.model(h), loader, epochs=1, checkpoint_dir=tmp_path, seed=0, progress=False)
    with pytest.raises(tg.CheckpointError, match="without weight_average"):
        tg.fit(tk.model(h), loader, epochs=2, checkpoint_dir=tmp_path, resume=True,
               weight_average=0.9, progress=False)
