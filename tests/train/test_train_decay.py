"""Weight decay as a mean over tasks, none on what a KL term regularizes (train/decay.py)."""

from __future__ import annotations

import pytest
import torch

import taskgraph as tg
from taskgraph.train import Callback
from taskgraph.train.decay import num_tasks, param_groups, per_task, prior_regularized
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


def test_per_task_parameters_are_the_task_rows(tk):
    h = tk.hierarchy("animals")
    model = tk.model(h, send="prediction")
    names = _names(model, per_task(model))
    assert "task_embedding" in names and "projections.weight" in names
    assert {n for n in names if n.startswith("heads.")} == {
        f"heads.{g}.{k}" for g in range(4) for k in ("weight", "bias")}
    assert {n for n in names if n.startswith("sources.")} == {f"sources.tables.{g}"
                                                             for g in range(4)}
    assert not any(n.startswith(("encoder.", "gnn.", "edge_synapses.")) for n in names)
    sto = tk.model(h, stochastic={"projections": True})
    assert "projections.weight" not in _names(sto, per_task(sto))  # it has a prior
    assert num_tasks(model) == 4


def test_groups_split_every_parameter_once(tk):
    model = tk.model(tk.hierarchy("animals"))  # 4 tasks
    extra = [torch.nn.Parameter(torch.zeros(3))]
    groups = param_groups(model, 1e-4, extra, task_weight_decay=2e-3)
    assert [g["weight_decay"] for g in groups] == [1e-4, 2e-3 / 4, 0.0]  # lambda_task / T
    ids = [id(p) for g in groups for p in g["params"]]
    want = [id(p) for p in model.parameters()] + [id(extra[0])]
    assert sorted(ids) == sorted(want) and len(ids) == len(set(ids))
    assert any(p is extra[0] for p in groups[0]["params"])  # decayed like shared weights
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in per_task(model)}
    assert [g["weight_decay"] for g in param_groups(model, 1e-4)] == [1e-4, 1e-4, 0.0]
    only = param_groups(model, 0.0)
    assert len(only) == 1 and len(only[0]["params"]) == len(list(model.parameters()))
    tasks_only = param_groups(model, 0.0, task_weight_decay=4e-4)
    assert [g["weight_decay"] for g in tasks_only] == [0.0, 1e-4, 0.0]
    flat = tk.model(tk.hierarchy("animals"), rounds=0)  # no synapses: no third group
    assert [g["weight_decay"] for g in param_groups(flat, 1e-4)] == [1e-4, 1e-4]


def test_one_adam_step_moves_only_the_decayed_parameters(tk):
    # With no data gradient, Adam's first step on g = wd * theta is
    # theta - lr * g / (|g| + eps) (m_hat = g, v_hat = g^2): by hand below, with wd 1e-3 on
    # shared weights, 2e-3 / 4 on the 4 tasks' own and 0 on the synapses (which stay put).
    model = tk.model(tk.hierarchy("animals"))
    lr, wd, eps = 1e-2, 1e-3, 1e-8
    own = {id(p) for p in per_task(model)}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = make_optimizer(param_groups(model, wd, task_weight_decay=2e-3), lr=lr,
                         weight_decay=wd)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for name, p in model.named_parameters():
        theta = before[name]
        if name.startswith("edge_synapses."):
            assert torch.equal(p.detach(), theta), name
            continue
        g = (2e-3 / 4 if id(p) in own else wd) * theta
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
    tg.fit(model, tk.loader(h, *tk.cell_data(16)), epochs=1, weight_decay=1e-3,
           task_weight_decay=0.014, seed=0, progress=False, callbacks=[spy])
    n_syn, n_own = len(prior_regularized(model)), len(per_task(model))
    assert n_syn == 3 and n_own > 0
    T = len(h.task_names)
    assert spy.seen == [(1e-3, len(list(model.parameters())) - n_syn - n_own),
                        (0.014 / T, n_own), (0.0, n_syn)]


def test_resuming_with_another_number_of_groups_names_the_reason(tk, tmp_path):
    h = tk.hierarchy("cell_functions")
    loader = tk.loader(h, *tk.cell_data(16))
    tg.fit(tk.model(h), loader, epochs=1, checkpoint_dir=tmp_path, seed=0, progress=False)
    with pytest.raises(tg.CheckpointError, match="1 parameter group.*this run's 3"):
        tg.fit(tk.model(h), loader, epochs=2, checkpoint_dir=tmp_path, resume=True,
               weight_decay=1e-4, progress=False)


@pytest.mark.parametrize("key, value", [("weight_decay", -1e-3), ("weight_decay", None),
                                        ("task_weight_decay", -1.0),
                                        ("task_weight_decay", "1e-3")])
def test_fit_refuses_a_bad_weight_decay(tk, key, value):
    h = tk.hierarchy("cell_functions")
    with pytest.raises(tg.ArgumentError, match=f"fit: {key}: expected a number >= 0"):
        tg.fit(tk.model(h), tk.loader(h, *tk.cell_data(16)), epochs=1, progress=False,
               **{key: value})
