"""MC dropout runs the encoder's part before its first dropout module once: the same
draws as running the whole encoder per draw, and the head really runs once."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import taskgraph as tg
from taskgraph.model.encoder import MLPEncoder


def whole_encoder_draws(model, x, samples, chunk_size=None):
    """The reference: the same predict with the encoder split switched off."""
    encoder = model.encoder
    split = encoder.dropout_split
    encoder.dropout_split = lambda: None
    try:
        return model.predict(x, samples=samples, dropout=True, chunk_size=chunk_size)
    finally:
        encoder.dropout_split = split


def test_mlp_encoder_split_gives_the_same_draws():
    torch.manual_seed(0)
    model = tg.compile("hierarchies/animals.yaml", in_features=6, task_dim=4,
                       encoder_spec={"hidden": [16, 8], "dropout": 0.5})
    assert model.encoder.dropout_split() is not None
    x = torch.randn(5, 6)
    torch.manual_seed(3)
    split = model.predict(x, samples=6, dropout=True, chunk_size=4)
    torch.manual_seed(3)
    whole = whole_encoder_draws(model, x, 6, chunk_size=4)
    for task in ("diet", "mammal", "species"):
        torch.testing.assert_close(split[task].probs, whole[task].probs)
        torch.testing.assert_close(split[task].mutual_info, whole[task].mutual_info)
    assert float(split["diet"].std.max()) > 0  # the draws differ


def test_a_user_sequential_runs_its_head_once():
    calls = []

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(6, 12)

        def forward(self, x):
            calls.append(x.shape[0])
            return torch.relu(self.lin(x))

    torch.manual_seed(0)
    encoder = nn.Sequential(Head(), nn.Dropout(0.3), nn.Linear(12, 10))
    model = tg.compile("hierarchies/animals.yaml", encoder=encoder, encoder_dim=10,
                       task_dim=4)
    x = torch.randn(4, 6)
    torch.manual_seed(1)
    split = model.predict(x, samples=8, dropout=True)
    assert calls == [4]  # once, on the 4 rows, not on 8 x 4
    calls.clear()
    torch.manual_seed(1)
    whole = whole_encoder_draws(model, x, 8)
    assert sum(calls) == 32
    torch.testing.assert_close(split["species"].probs, whole["species"].probs)


@pytest.mark.parametrize("encoder", [
    nn.Sequential(nn.Dropout(0.2), nn.Linear(6, 10)),   # dropout first: nothing to run once
    nn.Sequential(nn.Linear(6, 10), nn.ReLU()),          # no dropout
])
def test_no_split_where_nothing_comes_before_the_dropout(encoder):
    model = tg.compile("hierarchies/animals.yaml", encoder=encoder, encoder_dim=10,
                       task_dim=4)
    assert model.encoder.dropout_split() is None


def test_mlp_without_dropout_has_no_split():
    from taskgraph.hierarchy import EncoderSpec

    assert MLPEncoder(6, EncoderSpec(hidden=(8,), dropout=0.0)).dropout_split() is None
    assert MLPEncoder(6, EncoderSpec(hidden=(8,), dropout=0.1)).dropout_split() is not None
