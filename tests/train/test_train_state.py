"""``TrainingState``: what a checkpoint holds, and checkpoints of earlier versions."""

from __future__ import annotations

import torch

import taskgraph as tg
from taskgraph.train import TrainingState
from taskgraph.train.state import read_checkpoint, write_atomic

#: the entries of a checkpoint written before weight averaging existed
EARLIER_KEYS = {"format", "epoch", "step", "hierarchy", "model", "optimizer", "scheduler",
                "balancer", "history", "bad_epochs", "best_value", "best_state", "rng"}


def test_a_checkpoint_is_the_training_state(tk, tmp_path):
    h = tk.hierarchy("cell_functions")
    model = tk.model(h)
    tg.fit(model, tk.loader(h, *tk.cell_data(32), batch_size=8), epochs=2, seed=0,
           progress=False, checkpoint_dir=tmp_path)
    payload = read_checkpoint(tmp_path / "last.pt")
    assert set(payload) == EARLIER_KEYS | {"average"}
    assert (payload["epoch"], payload["step"], payload["average"]) == (2, 8, None)

    fresh = tk.model(h, seed=9)
    optimizer = torch.optim.Adam(fresh.parameters())
    state = TrainingState(fresh, optimizer)
    state.load_dict(payload)
    assert (state.epoch, state.step, len(state.history)) == (2, 8, 2)
    assert tk.same_state(fresh, model)
    again = state.to_dict()
    assert set(again) == set(payload)
    assert all(torch.equal(again["model"][k], payload["model"][k]) for k in payload["model"])


def test_a_checkpoint_of_an_earlier_version_resumes_exactly(tk, tmp_path):
    """A checkpoint without the ``average`` entry (as written before weight averaging
    existed) continues like an uninterrupted run."""
    h = tk.hierarchy("animals")
    x, y = tk.animals_data(32)
    kw = dict(seed=3, progress=False, lr=1e-2, grad_noise=0.05, weighting="uncertainty")

    def model():
        return tk.model(h, encoder_spec={"hidden": [8], "dropout": 0.2})

    straight = model()
    tg.fit(straight, tk.loader(h, x, y, batch_size=8), epochs=3, **kw)
    tg.fit(model(), tk.loader(h, x, y, batch_size=8), epochs=2, checkpoint_dir=tmp_path, **kw)
    path = tmp_path / "last.pt"
    earlier = {k: v for k, v in read_checkpoint(path).items() if k in EARLIER_KEYS}
    write_atomic(earlier, path)
    resumed = model()
    history = tg.fit(resumed, tk.loader(h, x, y, batch_size=8), epochs=3,
                     checkpoint_dir=tmp_path, resume=True, **kw)
    assert history["epoch"] == [1, 2, 3]
    assert tk.same_state(resumed, straight)
