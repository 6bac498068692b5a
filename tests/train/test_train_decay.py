"""Weight decay skips the parameters a KL term regularizes (taskgraph/train/decay.py)."""

from __future__ import annotations

import pytest
import torch

import taskgraph as tg
from taskgraph.train import Callback
from taskgraph.train.decay import param_groups, prior_regularized
from taskgraph.train.fit import make_optimizer


def _names(model, params):
    ids = {id(p) for p in params}
    return sorted(n for n, p in model.named_parameters() if id(p) in ids)


def test_the_synapses_and_stochastic_layers_are_the_prior_regularized_parameters(tk):
    h = tk.hierarchy("animals")
    plain = tk.model(h)
    assert _names(plain, prior_regularized(plain)) == [
        "edge_synapses.mu", "edge_synapses.p_logit", "edge_synapses.rho"]
    sto = tk.model(h, stochastic={"projections": True, "encoder": True})
    names = _names(sto, prior_regularized(sto))
    assert "projections.weight_rho" in names and "projections.weight" in names
    assert "encoder.layers.0.weight_rho" in names and "encoder.layers.0.weight" in names
    assert "task_embedding" not in names and not any(n.startswith("heads.") for n in names)
    flat = tk.model(h, rounds=0)
    assert prior_regularized(flat) == []


def test_groups_split_every_parameter_once(tk):
    model = tk.model(tk.hierarchy("animals"))
    extra = [torch.nn.Parameter(torch.zeros(3))]
    groups = param_groups(model, 1e-4, extra)
    assert [g["weight_decay"] for g in groups] == [1e-4, 0.0]
    ids = [id(p) for g in groups for p in g["params"]]
    want = [id(p) for p in model.parameters()] + [id(extra[0])]
    assert sorted(ids) == sorted(want) and len(ids) == len(set(ids))
    assert any(p is extra[0] for p in groups[0]["params"])  # decayed like the model
    only = param_groups(model, 0.0)
    assert len(only) == 1 and len(only[0]["params"]) == len(list(model.parameters()))
    flat = tk.model(tk.hierarchy("animals"), rounds=0)
    assert len(param_groups(flat, 1e-4)) == 1


def test_one_adam_step_moves_only_the_decayed_parameters(tk):
    # With no data gradient, Adam's first step on g = wd * theta is
    # theta - lr * g / (|g| + eps) (m_hat = g, v_hat = g^2): by hand below.
    model = tk.model(tk.hierarchy("animals"))
    lr, wd, eps = 1e-2, 1e-3, 1e-8
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = make_optimizer(param_groups(model, wd), lr=lr, weight_decay=wd)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for name, p in model.named_parameters():
        theta = before[name]
        if name.startswith("edge_synapses."):
            assert torch.equal(p.detach(), theta), name
        else:
            g = wd * theta
            want = theta - lr * g / (g.abs() + eps)
            torch.testing.assert_close(p.detach(), want, rtol=1e-5, atol=1e-7, msg=name)


class _Groups(Callback):
    def __init__(self) -> None:
        self.seen = None

    def on_epoch_end(self, state, record) -> None:
        self.seen = [(g["weight_decay"], len(g["params"])) for g in state.optimizer.param_groups]


def test_fit_keeps_the_synapses_out_of_weight_decay(tk):
    h = tk.hierarchy("cell_functions")
    model = tk.model(h)
    spy = _Groups()
    tg.fit(model, tk.loader(h, *tk.cell_data(16)), epochs=1, weight_decay=1e-3, seed=0,
           progress=False, callbacks=[spy])
    n_syn = len(prior_regularized(model))
    assert n_syn == 3
    assert spy.seen == [(1e-3, len(list(model.parameters())) - n_syn), (0.0, n_syn)]


def test_resuming_with_another_number_of_groups_names_the_reason(tk, tmp_path):
    h = tk.hierarchy("cell_functions")
    loader = tk.loader(h, *tk.cell_data(16))
    tg.fit(tk.model(h), loader, epochs=1, checkpoint_dir=tmp_path, seed=0, progress=False)
    with pytest.raises(tg.CheckpointError, match="1 parameter group.*this run's 2"):
        tg.fit(tk.model(h), loader, epochs=2, checkpoint_dir=tmp_path, resume=True,
               weight_decay=1e-4, progress=False)
