"""Small compiled models and random labelled data for the evaluation tests."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import taskgraph as tg
from taskgraph.train.data import target_columns

IN = 6


def random_targets(hierarchy, n, rng, missing=0.2):
    """A target matrix in ``target_columns`` order with a share of missing labels."""
    cols = []
    for name, width in target_columns(hierarchy):
        spec = hierarchy[name]
        if spec.type == "regression":
            block = rng.normal(size=(n, width))
            block[rng.random((n, width)) < missing] = np.nan
        elif spec.type == "multiclass":
            block = rng.integers(0, len(spec.classes), (n, 1)).astype(float)
            block[rng.random((n, 1)) < missing] = -1
        else:
            block = (rng.random((n, width)) < 0.4).astype(float)
            block[rng.random((n, width)) < missing] = -1
        cols.append(block)
    return np.concatenate(cols, axis=1)


@pytest.fixture
def make_case():
    """``(model, X, Y, loader)`` for a hierarchy file, seeded."""

    def make(path, n=64, missing=0.2, batch_size=16, seed=0, **overrides):
        torch.manual_seed(seed)
        model = tg.compile(path, in_features=IN, task_dim=4, **overrides)
        rng = np.random.default_rng(seed)
        X = torch.as_tensor(rng.normal(size=(n, IN)), dtype=torch.float32)
        Y = torch.as_tensor(random_targets(model.hierarchy, n, rng, missing), dtype=torch.float32)
        loader = DataLoader(TensorDataset(X, Y), batch_size=batch_size)
        return model, X, Y, loader

    return make
