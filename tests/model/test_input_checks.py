"""A model input of the wrong shape is one clear DataError naming the expected shape."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import taskgraph as tg

ANIMALS = str(Path(__file__).resolve().parents[2] / "hierarchies" / "animals.yaml")


@pytest.mark.parametrize("x, got", [(torch.randn(6), "(6,)"), (torch.randn(3, 5), "(3, 5)"),
                                    (torch.randn(2, 3, 6), "(2, 3, 6)"), ([0.0] * 6, "list")])
def test_mlp_input_must_be_batch_by_features(x, got):
    model = tg.compile(ANIMALS, in_features=6, task_dim=4)
    with pytest.raises(tg.DataError) as info:
        model(x)
    assert "(B, in_features=6)" in str(info.value) and got in str(info.value)


def test_one_example_gets_a_hint():
    model = tg.compile(ANIMALS, in_features=6, task_dim=4)
    with pytest.raises(tg.DataError, match="unsqueeze"):
        model.predict(torch.randn(6))
    assert model.predict(torch.randn(6)[None])["diet"].probs.shape == (1, 3)


def test_user_encoder_output_width_is_checked():
    model = tg.compile(ANIMALS, encoder=torch.nn.Linear(5, 7), encoder_dim=6, task_dim=4)
    with pytest.raises(tg.DataError, match=r"expected \(B, 6\).*got \(2, 7\)"):
        model(torch.randn(2, 5))
