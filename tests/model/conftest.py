"""Fixtures of the model-layer tests: small compiled models."""

from __future__ import annotations

import pytest
import torch

import taskgraph as tg
from model_test_utils import SMALL, hierarchy_path


@pytest.fixture
def small_model():
    """``small_model(source, in_features=5, **overrides)``: a small compiled model, seeded."""

    def build(source, in_features: int = 5, seed: int = 0, **overrides):
        if isinstance(source, str) and not source.endswith(".yaml") and "\n" not in source:
            source = hierarchy_path(source)
        kw = {**SMALL, **overrides}
        torch.manual_seed(seed)
        return tg.compile(source, in_features=in_features, **kw)

    return build
