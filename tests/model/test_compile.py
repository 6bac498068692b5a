"""compile(): sources, YAML defaults, keyword overrides, their validation, user encoders."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

import taskgraph as tg
from model_test_utils import MIXED, hierarchy_path


def _state_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# -- sources ----------------------------------------------------------------------------
def test_compile_from_hierarchy_path_pathlike_and_dict_agree():
    h = tg.load_hierarchy(hierarchy_path("animals"))
    sources = [h, hierarchy_path("animals"), Path(hierarchy_path("animals")), h.to_dict()]
    models = []
    for source in sources:
        torch.manual_seed(3)
        models.append(tg.compile(source, in_features=5, task_dim=4))
    for m in models:
        assert isinstance(m, tg.TaskGraphModel)
        assert m.hierarchy == h
        assert m.config == models[0].config
        assert _state_equal(m, models[0])
    x = torch.randn(3, 5)
    outs = [m.eval()(x) for m in models]
    for out in outs[1:]:
        for name in h.task_names:
            assert torch.equal(out[name], outs[0][name])


def test_compile_from_dict_literal():
    model = tg.compile(copy.deepcopy(MIXED), in_features=3, task_dim=4,
                       encoder_spec={"hidden": [8]})
    assert model.hierarchy.task_names == tuple(MIXED["tasks"])
    assert model.training  # compile returns a model in training mode


def test_compile_rejects_invalid_hierarchy_source():
    with pytest.raises(tg.HierarchyError):
        tg.compile({"taskgraph": 1, "tasks": {"a": {"type": "binar"}}}, in_features=3)


# -- YAML defaults ------------------------------------------------------------------------
def test_yaml_model_section_gives_the_defaults():
    model = tg.compile(hierarchy_path("animals"), in_features=5)
    c = model.config
    assert (c.task_dim, c.rounds, c.directions, c.message) == (64, 2, ("down", "up"), "sum")
    assert c.encoder.hidden == (256, 256) and c.encoder.dropout == 0.1
    assert c.synapse.kind == "gaussian" and c.synapse.std == 0.1
    assert c.in_features == 5 and not c.custom_encoder
    # the modules are built from those values
    linears = [m for m in model.encoder.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(5, 256), (256, 256)]
    dropouts = [m for m in model.encoder.modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) == 2 and all(d.p == 0.1 for d in dropouts)
    assert tuple(model.projections.task_weight().shape) == (4, 256, 64)
    assert tuple(model.task_embedding.shape) == (4, 64)
    assert len(model.gnn.convs) == 2
    assert model.gnn.directions == ("down", "up")
    assert model.coherence is None


def test_yaml_defaults_of_other_files():
    cell = tg.compile(hierarchy_path("cell_functions"), in_features=5)
    assert cell.config.coherent and cell.coherence is not None
    assert cell.config.task_dim == 16 and cell.projections.out_features == 16
    assert cell.config.synapse.kind == "bernoulli"
    senti = tg.compile(hierarchy_path("sentiment"), in_features=5)
    assert senti.config.message == "attention"
    assert all(conv.message_type == "attention" for conv in senti.gnn.convs)


def test_schema_defaults_when_yaml_has_no_model_section():
    model = tg.compile({"taskgraph": 1, "tasks": {"a": {"type": "binary"}}}, in_features=3)
    assert model.config.task_dim == 64 and model.config.rounds == 2
    assert model.config.encoder.hidden == (256, 256)


# -- overrides ----------------------------------------------------------------------------
def test_keyword_overrides_win_over_yaml():
    model = tg.compile(hierarchy_path("animals"), in_features=5, task_dim=6, rounds=1,
                       directions=["down"], message="attention", dropout=0.2,
                       synapse={"kind": "fixed", "mean": 0.5},
                       stochastic={"heads": True},
                       encoder_spec={"hidden": [7], "dropout": 0.0, "activation": "tanh"})
    c = model.config
    assert (c.task_dim, c.rounds, c.directions, c.message, c.dropout) == \
        (6, 1, ("down",), "attention", 0.2)
    assert c.synapse.kind == "fixed" and c.synapse.mean == 0.5
    assert c.synapse.std == 0.1  # keys not overridden keep the YAML value
    assert c.stochastic.heads and not c.stochastic.projections
    assert c.encoder.hidden == (7,) and c.encoder.activation == "tanh"
    # and the modules follow
    assert tuple(model.projections.task_weight().shape) == (4, 7, 6)
    assert len(model.gnn.convs) == 1
    conv = model.gnn.convs[0]
    assert conv.directions == ("down",) and conv.message_type == "attention"
    assert conv.dropout == 0.2
    assert all(head.stochastic for head in model.heads)
    assert not model.projections.stochastic
    assert not any(isinstance(m, nn.Dropout) for m in model.encoder.modules())
    assert any(isinstance(m, nn.Tanh) for m in model.encoder.modules())
    # one synapse per edge (down only); the file's per-edge override still applies
    rows = {(r["parent"], r["child"]): r for r in model.synapses()}
    assert len(model.synapses()) == 3
    assert rows[("mammal", "diet")]["kind"] == "bernoulli"
    assert rows[("diet", "species")]["kind"] == "fixed"
    assert rows[("diet", "species")]["mean"] == pytest.approx(0.5)
    assert rows[("diet", "species")]["std"] == 0.0
    # the bernoulli edge takes its amplitude from the new default: E[w] = 0.5 * 0.9
    assert rows[("mammal", "diet")]["mean"] == pytest.approx(0.45, abs=1e-6)


def test_overrides_accept_tuples():
    model = tg.compile(hierarchy_path("animals"), in_features=5, task_dim=4,
                       directions=("up",), encoder_spec={"hidden": (8, 6)})
    assert model.config.directions == ("up",)
    assert model.config.encoder.hidden == (8, 6)
    assert model.projections.in_features == 6


def test_coherent_keyword_overrides_yaml():
    off = tg.compile(hierarchy_path("cell_functions"), in_features=5, task_dim=4,
                     coherent=False)
    assert not off.config.coherent and off.coherence is None
    on = tg.compile(hierarchy_path("animals"), in_features=5, task_dim=4, coherent=True)
    assert on.config.coherent and on.coherence is not None


@pytest.mark.parametrize("kwargs, expected", [
    ({"task_dims": 4}, ["task_dims", "did you mean 'task_dim'"]),
    ({"round": 1}, ["round", "did you mean 'rounds'"]),
    ({"task_dim": 0}, ["task_dim", "positive integer", "got 0"]),
    ({"task_dim": 2.5}, ["task_dim", "positive integer"]),
    ({"rounds": -1}, ["rounds", "got -1"]),
    ({"rounds": True}, ["rounds", "got True"]),
    ({"directions": "down"}, ["directions", "'down'"]),
    ({"directions": ["down", "down"]}, ["directions", "distinct"]),
    ({"directions": ["sideways"]}, ["directions", "sideways"]),
    ({"message": "attn"}, ["message", "did you mean 'attention'"]),
    ({"dropout": 1.0}, ["dropout", "[0, 1)"]),
    ({"dropout": -0.1}, ["dropout"]),
    ({"synapse": {"kind": "gausian"}}, ["synapse.kind", "did you mean 'gaussian'"]),
    ({"synapse": {"sdt": 0.1}}, ["synapse.sdt", "did you mean 'std'"]),
    ({"synapse": {"std": 0}}, ["synapse.std", "positive"]),
    ({"synapse": {"p": 1.5}}, ["synapse.p"]),
    ({"synapse": 3}, ["synapse", "mapping"]),
    ({"stochastic": {"head": True}}, ["stochastic.head", "did you mean 'heads'"]),
    ({"stochastic": {"heads": "yes"}}, ["stochastic.heads", "true or false"]),
    ({"encoder_spec": {"hiden": [8]}}, ["hiden", "did you mean 'hidden'"]),
    ({"encoder_spec": {"hidden": [0]}}, ["hidden", "positive integers"]),
    ({"encoder_spec": {"activation": "rleu"}}, ["activation", "did you mean 'relu'"]),
])
def test_invalid_overrides_raise_schema_error_naming_the_option(kwargs, expected):
    with pytest.raises(tg.SchemaError) as info:
        tg.compile(hierarchy_path("animals"), in_features=5, **kwargs)
    message = str(info.value)
    for part in expected:
        assert part in message, (part, message)


def test_every_bad_override_is_reported_at_once():
    with pytest.raises(tg.SchemaError) as info:
        tg.compile(hierarchy_path("animals"), in_features=5, task_dim=0, message="nope")
    assert "task_dim" in str(info.value) and "message" in str(info.value)


def test_misspelled_encoder_spec_suggests_encoder_spec():
    # `encoder=` takes an nn.Module; the mapping of MLP keys is spelled `encoder_spec`,
    # so that is the name a typo of it should point to.
    with pytest.raises(tg.SchemaError) as info:
        tg.compile(hierarchy_path("animals"), in_features=5, encoder_specs={"hidden": [8]})
    assert "did you mean 'encoder_spec'?" in str(info.value)


def test_rounds_zero_turns_message_passing_off():
    model = tg.compile(hierarchy_path("animals"), in_features=5, task_dim=4, rounds=0)
    assert model.config.rounds == 0 and not model.config.message_passing
    assert model.gnn is None and model.edge_synapses is None
    assert model.synapses() == []
    out = model(torch.randn(2, 5))
    assert out["diet"].shape == (2, 3)


def test_empty_directions_turn_message_passing_off():
    model = tg.compile(hierarchy_path("animals"), in_features=5, task_dim=4, directions=[])
    assert model.config.directions == ()
    assert model.gnn is None and model.edge_synapses is None
    assert model.synapses() == []
    assert model(torch.randn(2, 5))["species"].shape == (2, 4)


# -- input width and user encoders ----------------------------------------------------------
def test_missing_in_features_without_encoder():
    with pytest.raises(tg.ArgumentError, match="compile: in_features: expected N"):
        tg.compile(hierarchy_path("animals"))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "8"])
def test_invalid_in_features(bad):
    with pytest.raises(tg.ArgumentError, match="compile: in_features: expected a positive"):
        tg.compile(hierarchy_path("animals"), in_features=bad)


def test_encoder_must_be_a_module():
    with pytest.raises(tg.ArgumentError, match="compile: encoder: expected a torch.nn.Module"):
        tg.compile(hierarchy_path("animals"), encoder=lambda x: x)


def test_sequential_encoder_width_is_inferred():
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Linear(10, 12), nn.ReLU(), nn.Linear(12, 9))
    model = tg.compile(hierarchy_path("animals"), encoder=enc, task_dim=4)
    assert model.encoder.module is enc  # behind the adapter that gives it sample= and kl()
    assert model.config.custom_encoder and model.config.encoder_dim == 9
    assert model.projections.in_features == 9
    out = model(torch.randn(3, 10))
    assert out["species"].shape == (3, 4) and out["mammal"].shape == (3,)
    # the user's encoder takes part in training
    model.loss(out, {"mammal": torch.tensor([1.0, 0.0, 1.0])}).total.backward()
    assert enc[0].weight.grad is not None and enc[0].weight.grad.abs().sum() > 0


class SmallCNN(nn.Module):
    """Conv -> ReLU -> flatten: its width (3 * 6 * 6) cannot be read off its layers."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, kernel_size=3)
        self.flat = nn.Flatten()

    def forward(self, x):
        return self.flat(torch.relu(self.conv(x)))  # (B, 108)


def test_cnn_encoder_with_encoder_dim():
    torch.manual_seed(0)
    model = tg.compile(hierarchy_path("animals"), encoder=SmallCNN(), encoder_dim=108,
                       task_dim=4)
    assert model.projections.in_features == 108
    out = model(torch.randn(2, 1, 8, 8))
    assert out["diet"].shape == (2, 3) and out["weight_kg"].shape == (2,)


class LSTMEncoder(nn.Module):
    """Reads a sequence and returns the last hidden state, (B, hidden)."""

    def __init__(self, features: int = 3, hidden: int = 6) -> None:
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, batch_first=True)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return h[-1]  # (B, hidden)


def test_lstm_wrapper_encoder():
    torch.manual_seed(0)
    model = tg.compile(hierarchy_path("sentiment"), encoder=LSTMEncoder(), task_dim=4)
    assert model.projections.in_features == 6
    out = model(torch.randn(5, 7, 3))  # (B, L, features)
    assert out["aspects"].shape == (5, 5) and out["emotion"].shape == (5, 6)


class TupleEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 5)

    def forward(self, x):
        z = self.lin(x)
        return z, z.detach() * 0  # (representation, extra)


def test_encoder_returning_a_tuple_uses_its_first_element():
    torch.manual_seed(0)
    model = tg.compile(hierarchy_path("animals"), encoder=TupleEncoder(), task_dim=4,
                       rounds=0).eval()
    x = torch.randn(3, 4)
    z = model.encoder.module.lin(x)
    assert torch.equal(model.encode(x), z)
    assert model(x)["diet"].shape == (3, 3)


class MeanPool(nn.Module):
    def forward(self, x):
        return x.mean(1)


def test_encoder_width_not_inferable_needs_encoder_dim():
    with pytest.raises(tg.ArgumentError, match="encoder_dim"):
        tg.compile(hierarchy_path("animals"), encoder=MeanPool())
    model = tg.compile(hierarchy_path("animals"), encoder=MeanPool(), encoder_dim=5,
                       task_dim=4)
    assert model(torch.randn(2, 3, 5))["mammal"].shape == (2,)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_invalid_encoder_dim(bad):
    with pytest.raises(tg.ArgumentError, match="compile: encoder_dim: expected a positive"):
        tg.compile(hierarchy_path("animals"), encoder=MeanPool(), encoder_dim=bad)


# -- projection_rank ----------------------------------------------------------------------
def _chain(n: int) -> dict:
    tasks = {"t0": {"type": "binary"}}
    tasks.update({f"t{i}": {"type": "binary", "parents": [f"t{i - 1}"]} for i in range(1, n)})
    return {"taskgraph": 1, "tasks": tasks}


def test_projection_rank_full_and_explicit():
    h = hierarchy_path("animals")
    full = tg.compile(h, in_features=5, task_dim=4, projection_rank="full")
    assert full.reduce is None and full.projections.in_features == 256  # encoder width
    low = tg.compile(h, in_features=5, task_dim=4, projection_rank=3)
    assert low.reduce.in_features == 256 and low.reduce.out_features == 3
    assert low.projections.in_features == 3
    # T*r*F + D*r + r projection weights instead of T*D*F
    T = low.layout.num_tasks
    assert low.projections.weight.numel() == T * 3 * 4
    out = low(torch.randn(2, 5))
    low.loss(out, {"diet": torch.tensor([0, 1])}).total.backward()
    assert low.reduce.weight.grad.abs().sum() > 0


def test_projection_rank_auto_switches_on_by_size():
    small = tg.compile(_chain(10), in_features=5, task_dim=16)
    assert small.config.projection_rank == "auto" and small.reduce is None
    # 2,000 tasks x 256 x 16 = 8.2 M weights: full; 5,000 x 256 x 16 = 20.5 M: low rank
    assert tg.compile(_chain(2000), in_features=5, task_dim=16).reduce is None
    big = tg.compile(_chain(5000), in_features=5, task_dim=16)
    r = big.reduce.out_features
    assert 16 <= r < 256 and 5000 * r * 16 <= 2**24
    assert sum(p.numel() for p in big.projections.parameters()) < 2**24 + 5000 * 16


def test_projection_rank_from_yaml_and_its_checks():
    doc = {"taskgraph": 1, "model": {"projection_rank": 2},
           "tasks": {"a": {"type": "binary"}, "b": {"type": "binary", "parents": ["a"]}}}
    assert tg.compile(doc, in_features=3).reduce.out_features == 2
    bad = dict(doc, model={"projection_rank": "low"})
    with pytest.raises(tg.SchemaError, match="projection_rank"):
        tg.load_hierarchy(bad)
    for value in (0, -1, 2.5, True):
        with pytest.raises(tg.SchemaError, match="projection_rank"):
            tg.compile(doc, in_features=3, projection_rank=value)


def test_projection_rank_survives_save_and_load(tmp_path):
    model = tg.compile(hierarchy_path("animals"), in_features=5, task_dim=4, projection_rank=3)
    tg.save(model, tmp_path / "m.pt")
    again = tg.load(tmp_path / "m.pt")
    assert again.reduce.out_features == 3
    x = torch.randn(2, 5)
    model.eval(), again.eval()
    torch.testing.assert_close(again(x)["diet"], model(x)["diet"])
