"""Shared toy problems for the training-loop tests: tiny models, small data sets."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import taskgraph as tg
from taskgraph.train import TaskDataset, make_loader

ROOT = Path(__file__).resolve().parents[2]
HIERARCHIES = ROOT / "hierarchies"


def _hierarchy(name: str):
    """A hierarchy from ``hierarchies/NAME.yaml``, or YAML text."""
    if "\n" in name:
        return tg.load_hierarchy(name)
    return tg.load_hierarchy(HIERARCHIES / f"{name}.yaml")


def _model(h, *, seed: int = 0, **overrides):
    """A tiny model, initialized from ``seed``."""
    kw = {"in_features": 6, "task_dim": 4, "encoder_spec": {"hidden": [8]}}
    kw.update(overrides)
    torch.manual_seed(seed)
    return tg.compile(h, **kw)


def _cell_data(n: int = 64, seed: int = 0):
    """cell_functions data whose labels are a simple, coherent function of ``x``.

    A child function is present only when its parents are, so the labels obey the DAG.
    Columns follow the hierarchy's order: metabolism, signaling, lipid_metabolism,
    carbohydrate_metabolism, glycolysis, receptor_signaling, lipid_signaling.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=gen)
    pos = x > 0
    metabolism = pos[:, 0]
    signaling = pos[:, 1]
    lipid = metabolism & pos[:, 2]
    carb = metabolism & pos[:, 3]
    glyc = carb & pos[:, 4]
    receptor = signaling & pos[:, 5]
    lipid_sig = lipid & signaling
    y = torch.stack([metabolism, signaling, lipid, carb, glyc, receptor, lipid_sig], 1).float()
    return x, y


def _animals_data(n: int = 48, seed: int = 0, missing: bool = True):
    """animals data: mammal (binary), diet (3 classes), species (4), weight_kg (regression)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=gen)
    mammal = (x[:, 0] > 0).float()
    diet = ((x[:, 1] > 0.3).long() + (x[:, 2] > 0.5).long()).float()
    species = torch.randint(0, 4, (n,), generator=gen).float()
    weight = x[:, 3] * 2.0 + 1.0
    y = torch.stack([mammal, diet, species, weight], 1)
    if missing:
        y[::5, 1] = -1.0
        y[::7, 3] = float("nan")
    return x, y


def _loader(h, x, y, *, batch_size: int = 16, shuffle: bool = True, seed: int = 0):
    return make_loader(TaskDataset(x, y, h), batch_size=batch_size, shuffle=shuffle, seed=seed)


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy machine the threads'
    spin-waiting costs far more than the work; the previous setting is restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tk() -> SimpleNamespace:
    """The toolkit of the training tests."""
    return SimpleNamespace(root=ROOT, hierarchy=_hierarchy, model=_model,
                           cell_data=_cell_data, animals_data=_animals_data, loader=_loader,
                           same_state=_same_state)
