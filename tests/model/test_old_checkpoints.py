"""Files saved before the encoder adapter and the one group-index buffer still load and
compute what they computed then.

``data/old_*.pt`` were written by taskgraph at commit f453ee9 (its ``compile``, ``save``,
``forward`` and ``predict``), together with the outputs that code gave (``*_expected.pt``):
an MLP model of every task type with stochastic projections and heads and target scaling,
and a model with a user encoder (``nn.Sequential`` of Linear, Tanh, BatchNorm1d), whose
weights sat at ``encoder.*`` where they now sit at ``encoder.module.*``. Both have
``rounds=0``: what message passing computes may change between versions on purpose; the
rest (encoder, projections, heads, scaling, sampling) must not.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import taskgraph as tg

DATA = Path(__file__).parent / "data"


def _user_encoder() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.BatchNorm1d(6))  # as saved


def test_an_old_mlp_model_loads_and_predicts_as_it_did():
    model = tg.load(DATA / "old_mlp.pt")
    expected = torch.load(DATA / "old_mlp_expected.pt", weights_only=True)
    x = expected["x"]
    with torch.no_grad():
        out = model(x)
    for name in model.hierarchy.task_names:
        torch.testing.assert_close(out[name], expected[f"{name}.logits"], rtol=0, atol=1e-6)
    torch.manual_seed(1)  # the seed the expected predictions were drawn under
    pred = model.predict(x, samples=3)
    fields = ("probs", "std", "entropy", "mutual_info", "value", "variance", "label")
    checked = 0
    for name in model.hierarchy.task_names:
        for field in fields:
            key = f"{name}.{field}"
            if key in expected:
                torch.testing.assert_close(getattr(pred[name], field), expected[key],
                                           rtol=1e-5, atol=1e-6)
                checked += 1
    assert checked == 4 * 5 + 2  # a, b, c, e: probs, std, entropy, mutual_info, label; f: 2


def test_an_old_user_encoder_model_loads_into_the_adapter():
    model = tg.load(DATA / "old_user_encoder.pt", encoder=_user_encoder())
    expected = torch.load(DATA / "old_user_encoder_expected.pt", weights_only=True)
    with torch.no_grad():
        out = model(expected["x"])
    for name in model.hierarchy.task_names:
        torch.testing.assert_close(out[name], expected[f"{name}.logits"], rtol=0, atol=1e-6)
    # the BatchNorm's running statistics came along
    assert model.encoder.module[2].num_batches_tracked.item() == 0
    assert sorted(k for k in model.state_dict() if k.startswith("encoder."))[:2] == [
        "encoder.module.0.bias", "encoder.module.0.weight"]


def test_a_state_dict_in_the_old_layout_loads():
    torch.manual_seed(0)
    saved = tg.compile("hierarchies/animals.yaml", encoder=_user_encoder(), task_dim=4).eval()
    old = {k.replace("encoder.module.", "encoder."): v for k, v in saved.state_dict().items()}
    assert "encoder.0.weight" in old and not any("module" in k for k in old)
    torch.manual_seed(1)
    fresh = tg.compile("hierarchies/animals.yaml", encoder=_user_encoder(), task_dim=4).eval()
    fresh.load_state_dict(old)  # strict: every key found its place
    assert torch.equal(fresh.encoder.module[0].weight, saved.encoder.module[0].weight)
    x = torch.randn(2, 3)
    with torch.no_grad():
        assert torch.equal(fresh(x)["diet"], saved(x)["diet"])


def test_the_group_indices_are_one_buffer_and_not_saved():
    model = tg.compile("hierarchies/animals.yaml", in_features=3, task_dim=4)
    buffers = dict(model.named_buffers())
    assert "group_index" in buffers and not any(k.startswith("group_index_") for k in buffers)
    # groups (binary, multiclass 3, multiclass 4, regression) hold tasks 0, 1, 2, 3
    assert buffers["group_index"].tolist() == [0, 1, 2, 3]
    assert [model.group_tasks(g).tolist() for g in range(4)] == [[0], [1], [2], [3]]
    assert "group_index" not in model.state_dict() and "target_index" not in model.state_dict()


def test_an_old_model_with_message_passing_keeps_its_rounds():
    """Saved before the LayerNorm moved from the round's output to what is sent: the file
    has no ``message_norm``, so it loads as ``"residual"`` and computes what it did."""
    model = tg.load(DATA / "old_messages.pt")
    expected = torch.load(DATA / "old_messages_expected.pt", weights_only=True)
    assert model.config.message_norm == "residual" and model.config.rounds == 2
    with torch.no_grad():
        out = model(expected["x"])
    for name in model.hierarchy.task_names:
        torch.testing.assert_close(out[name], expected[f"{name}.logits"], rtol=0, atol=1e-6)
    fresh = tg.compile("hierarchies/animals.yaml", in_features=3, task_dim=4, rounds=2,
                       encoder_spec={"hidden": [5]})
    assert fresh.config.message_norm == "source"
