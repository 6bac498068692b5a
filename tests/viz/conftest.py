"""Shared objects of the picture tests: a tiny trained run, a generated 5,000-task tree."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from viz_helpers import ROOT, random_targets, tree_hierarchy

import taskgraph as tg


@pytest.fixture(scope="session")
def run(tmp_path_factory) -> SimpleNamespace:
    """A tiny animals model trained 2 epochs on random data, and its run folder."""
    import torch

    from taskgraph.metrics import evaluate
    from taskgraph.train import TaskDataset, make_loader

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        h = tg.load_hierarchy(ROOT / "hierarchies" / "animals.yaml")
        rng = np.random.default_rng(0)
        x = rng.normal(size=(48, 5)).astype(np.float32)
        data = TaskDataset(x, random_targets(h, 48, rng), h)
        torch.manual_seed(0)
        model = tg.compile(h, in_features=5, task_dim=8, encoder_spec={"hidden": [16]})
        loader = make_loader(data, batch_size=16, seed=0)
        val = make_loader(data, batch_size=48, shuffle=False)
        history = tg.fit(model, loader, val_loader=val, epochs=2, progress=False, seed=0)
        report = evaluate(model, val, samples=4)
        folder = tmp_path_factory.mktemp("run")
        tg.save(model, folder / "model.pt")
        (folder / "history.json").write_text(history.to_json(), encoding="utf-8")
        (folder / "report.json").write_text(report.to_json(), encoding="utf-8")
        (folder / "report.md").write_text(report.to_markdown(), encoding="utf-8")
    finally:
        torch.set_num_threads(threads)
    return SimpleNamespace(model=model, history=history, report=report, loader=val,
                           folder=folder, hierarchy=h, x=x)


@pytest.fixture(scope="session")
def big() -> tg.Hierarchy:
    """A generated 5,000-task tree."""
    return tree_hierarchy(5000)
