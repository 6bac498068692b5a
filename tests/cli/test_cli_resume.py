"""``taskgraph train --seed`` fixes the whole run, and ``--resume`` after SIGKILL ends
bit for bit where an uninterrupted run with the same seed ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from taskgraph.train.state import read_checkpoint

REPO = Path(__file__).resolve().parents[2]
ANIMALS = str(REPO / "hierarchies" / "animals.yaml")
SPECIES = ["cat", "dog", "cow", "eagle"]
DIET = {"cat": "carnivore", "dog": "omnivore", "cow": "herbivore", "eagle": "carnivore"}


def zoo(path: Path, n: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    rows = ["f1,f2,f3,mammal,diet,species,weight_kg"]
    for i in range(n):
        s = SPECIES[i % 4]
        x = rng.normal(size=3)
        diet = DIET[s] if i % 5 else ""  # some labels missing
        rows.append(f"{x[0]:.3f},{x[1]:.3f},{x[2]:.3f},{int(s != 'eagle')},{diet},{s},"
                    f"{10 * (1 + 0.1 * x[0]):.2f}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


def train_cmd(data: str, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "taskgraph", "train", ANIMALS, "--data", data,
            "--out", str(out), "--batch-size", "8", "--no-progress", *extra]


def env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("resume-data")
    return {"train": zoo(root / "train.csv", 400, seed=0), "val": zoo(root / "val.csv", 40, 1)}


def test_same_seed_same_model_other_seed_other_model(data, tmp_path):
    runs = {}
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        proc = subprocess.run(train_cmd(data["train"], tmp_path / name, "--epochs", "1",
                                        "--seed", seed), env=env(), capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs[name] = tmp_path / name / "model.pt"
    assert_same_weights(runs["a"], runs["b"])
    wa, wc = weights(runs["a"]), weights(runs["c"])
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)


def test_sigkill_then_resume_equals_an_uninterrupted_run(data, tmp_path):
    epochs = "6"
    full, killed = tmp_path / "full", tmp_path / "killed"
    args = ("--epochs", epochs, "--seed", "7", "--val", data["val"])
    proc = subprocess.run(train_cmd(data["train"], full, *args), env=env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]

    runner = subprocess.Popen(train_cmd(data["train"], killed, *args), env=env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = killed / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 300
    while not last.exists() and runner.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=60)
    assert runner.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (killed / "model.pt").exists()
    done = read_checkpoint(last)["epoch"]
    assert 1 <= done < int(epochs)

    resumed = subprocess.run(train_cmd(data["train"], killed, *args, "--resume"), env=env(),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "no checkpoint" not in resumed.stderr
    assert_same_weights(full / "model.pt", killed / "model.pt")
    assert (full / "history.json").read_text().count('"epoch"') == \
        (killed / "history.json").read_text().count('"epoch"')


def test_resume_without_a_checkpoint_says_so(data, tmp_path):
    proc = subprocess.run(train_cmd(data["train"], tmp_path / "fresh", "--epochs", "1",
                                    "--resume"), env=env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--resume: no checkpoint in" in proc.stderr
    assert "starting a fresh run" in proc.stderr
