"""Checkpoints and ``resume=True``: a run killed mid-way continues bit for bit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import taskgraph as tg
from taskgraph.train.state import read_checkpoint, write_atomic

WORKER = Path(__file__).with_name("resume_worker.py")


def _tmp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".tmp" in p.name] if folder.exists() else []


def _equal(a, b, path="") -> None:
    """Recursive bitwise equality of checkpoint contents (tensors, containers, numbers)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), path
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (path, a.keys(), b.keys())
        for k in a:
            _equal(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _equal(x, y, f"{path}[{i}]")
    else:
        assert a == b, (path, a, b)


def _without_time(history: dict) -> dict:
    return {**history, "epochs": [{k: v for k, v in r.items() if k != "time"}
                                  for r in history["epochs"]]}


def _run_worker(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(WORKER), *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_resume_after_sigkill_equals_an_uninterrupted_run(tmp_path):
    """A process SIGKILLed after the training of epoch 3 (before that epoch's checkpoint)
    resumes from the checkpoint of epoch 2 and ends with exactly the weights, optimizer
    state, history and random states of a run that was never interrupted."""
    epochs, kill_at = 5, 3
    killed_dir, full_dir = tmp_path / "killed", tmp_path / "full"

    killed = _run_worker(str(epochs), str(kill_at), "kill", str(killed_dir),
                         str(tmp_path / "never.pt"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (tmp_path / "never.pt").exists()
    assert sorted(p.name for p in killed_dir.iterdir()) == ["last.pt"]
    partial = read_checkpoint(killed_dir / "last.pt")
    assert partial["epoch"] == kill_at - 1
    assert len(partial["history"]["epochs"]) == kill_at - 1

    done = _run_worker(str(epochs), str(kill_at),
                       "resume", str(killed_dir), str(tmp_path / "resumed.pt"),
                       "full", str(full_dir), str(tmp_path / "full.pt"))
    assert done.returncode == 0, done.stderr[-3000:]

    resumed = torch.load(tmp_path / "resumed.pt", weights_only=True)
    full = torch.load(tmp_path / "full.pt", weights_only=True)
    assert resumed["state"].keys() == full["state"].keys()
    for key in full["state"]:
        assert torch.equal(resumed["state"][key], full["state"][key]), key
    _equal(resumed["optimizer"], full["optimizer"], "optimizer")
    assert len(full["history"]["epochs"]) == epochs
    _equal(_without_time(resumed["history"]), _without_time(full["history"]), "history")

    a, b = read_checkpoint(killed_dir / "last.pt"), read_checkpoint(full_dir / "last.pt")
    assert a["epoch"] == b["epoch"] == epochs
    for key in ("model", "optimizer", "scheduler", "best_state", "best_value", "bad_epochs",
                "step", "rng"):
        _equal(a[key], b[key], key)
    assert _tmp_files(killed_dir) == [] and _tmp_files(full_dir) == []


@pytest.mark.parametrize("weighting", ["static", "uncertainty", "pcgrad"])
def test_resume_continues_exactly(tk, tmp_path, weighting):
    """fit(epochs=2) then fit(epochs=4, resume=True) on a fresh model equals fit(epochs=4)."""
    h = tk.hierarchy("animals")
    x, y = tk.animals_data(32)
    kw = dict(weighting=weighting, grad_noise=0.05, seed=3, progress=False, lr=1e-2)

    def model():
        return tk.model(h, encoder_spec={"hidden": [8], "dropout": 0.2})

    straight = model()
    tg.fit(straight, tk.loader(h, x, y, batch_size=8), epochs=4,
           checkpoint_dir=tmp_path / "straight", **kw)
    first = model()
    tg.fit(first, tk.loader(h, x, y, batch_size=8), epochs=2,
           checkpoint_dir=tmp_path / "split", **kw)
    torch.rand(5)  # whatever happened in between must not matter
    second = model()
    history = tg.fit(second, tk.loader(h, x, y, batch_size=8), epochs=4,
                     checkpoint_dir=tmp_path / "split", resume=True, **kw)
    assert history["epoch"] == [1, 2, 3, 4]
    assert tk.same_state(second, straight)
    a = read_checkpoint(tmp_path / "split" / "last.pt")
    b = read_checkpoint(tmp_path / "straight" / "last.pt")
    _equal(a["balancer"], b["balancer"], "balancer")
    if weighting == "uncertainty":
        assert a["balancer"] is not None


def test_checkpoint_written_every_epoch_without_temporary_files(tk, tmp_path):
    h = tk.hierarchy("cell_functions")
    model = tk.model(h)
    tg.fit(model, tk.loader(h, *tk.cell_data(32)), epochs=2, checkpoint_dir=tmp_path / "ck",
           seed=0, progress=False)
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["last.pt"]
    ckpt = read_checkpoint(tmp_path / "ck" / "last.pt")
    assert ckpt["epoch"] == 2 and ckpt["format"] == "taskgraph-training"
    for key, value in model.state_dict().items():
        assert torch.equal(ckpt["model"][key], value), key
    # it holds only plain data: it loads with weights_only=True
    torch.load(tmp_path / "ck" / "last.pt", weights_only=True)


def test_resume_without_a_checkpoint_is_a_fresh_run(tk, tmp_path):
    h = tk.hierarchy("cell_functions")
    data = tk.cell_data(32)
    a, b = tk.model(h), tk.model(h)
    tg.fit(a, tk.loader(h, *data), epochs=2, seed=0, progress=False)
    history = tg.fit(b, tk.loader(h, *data), epochs=2, seed=0, progress=False,
                     checkpoint_dir=tmp_path / "new", resume=True)
    assert len(history) == 2
    assert tk.same_state(a, b)


def test_resume_of_a_finished_run_trains_no_further(tk, tmp_path):
    h = tk.hierarchy("cell_functions")
    data = tk.cell_data(32)
    a = tk.model(h)
    first = tg.fit(a, tk.loader(h, *data), epochs=2, seed=0, progress=False,
                   checkpoint_dir=tmp_path)
    b = tk.model(h, seed=5)
    again = tg.fit(b, tk.loader(h, *data), epochs=2, seed=0, progress=False,
                   checkpoint_dir=tmp_path, resume=True)
    assert again.records == first.records
    assert tk.same_state(a, b)


def test_resume_of_an_early_stopped_run_trains_no_further(tk, tmp_path):
    """A run that stopped early is finished: resuming it (say, a job restarted by its
    scheduler after the run ended) returns the same history and the same best weights."""
    h = tk.hierarchy("cell_functions")
    x, y = tk.cell_data(32)
    val = tk.loader(h, x, 1 - y, batch_size=32, shuffle=False)  # gets worse as train improves
    kw = dict(val_loader=val, epochs=8, lr=2e-2, seed=0, progress=False, val_metrics=False,
              early_stopping=tg.EarlyStopping("val_loss", patience=1), checkpoint_dir=tmp_path)
    a = tk.model(h)
    first = tg.fit(a, tk.loader(h, x, y), **kw)
    assert first.stopped_early and len(first) < 8
    b = tk.model(h, seed=5)
    again = tg.fit(b, tk.loader(h, x, y), resume=True, **kw)
    assert len(again) == len(first)
    assert again.stopped_early
    assert tk.same_state(a, b)


def test_truncated_checkpoint_raises_checkpoint_error(tk, tmp_path):
    h = tk.hierarchy("animals")
    loader = tk.loader(h, *tk.animals_data(16))
    tg.fit(tk.model(h), loader, epochs=1, checkpoint_dir=tmp_path, seed=0, progress=False)
    path = tmp_path / "last.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(tg.CheckpointError, match="last.pt"):
        tg.fit(tk.model(h), loader, epochs=2, checkpoint_dir=tmp_path, resume=True,
               progress=False)
    path.write_bytes(b"")
    with pytest.raises(tg.CheckpointError):
        tg.fit(tk.model(h), loader, epochs=2, checkpoint_dir=tmp_path, resume=True,
               progress=False)


def test_a_model_checkpoint_is_not_a_training_checkpoint(tk, tmp_path):
    h = tk.hierarchy("animals")
    model = tk.model(h)
    tg.save(model, tmp_path / "last.pt")
    with pytest.raises(tg.CheckpointError, match="training checkpoint"):
        tg.fit(model, tk.loader(h, *tk.animals_data(16)), epochs=1, checkpoint_dir=tmp_path,
               resume=True, progress=False)


def test_resume_with_a_model_of_another_hierarchy_raises(tk, tmp_path):
    animals = tk.hierarchy("animals")
    tg.fit(tk.model(animals), tk.loader(animals, *tk.animals_data(16)), epochs=1,
           checkpoint_dir=tmp_path, seed=0, progress=False)
    cells = tk.hierarchy("cell_functions")
    with pytest.raises(tg.CheckpointError, match="animals.*cell_functions"):
        tg.fit(tk.model(cells), tk.loader(cells, *tk.cell_data(16)), epochs=2,
               checkpoint_dir=tmp_path, resume=True, progress=False)


def test_write_atomic_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "last.pt"
    write_atomic({"format": "taskgraph-training", "epoch": 1}, path)
    with pytest.raises(Exception):
        write_atomic({"format": "taskgraph-training", "bad": lambda: None}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    assert read_checkpoint(path)["epoch"] == 1
