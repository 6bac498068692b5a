"""Task balancing (static, uncertainty, PCGrad) and annealed gradient noise."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import taskgraph as tg
from taskgraph.train import PCGrad, Static, Uncertainty, Weighting
from taskgraph.train.loop import GradientNoise
from taskgraph.train.state import read_checkpoint
from taskgraph.train.weighting import PCGRAD_MAX_TASKS, UncertaintyWeighting

PAIR = "taskgraph: 1\nname: pair\ntasks:\n  a: {type: binary}\n  b: {type: binary}\n"
SCALES = "taskgraph: 1\nname: scales\ntasks:\n  small: {type: regression}\n  big: {type: regression}\n"


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


class _Recorder(torch.optim.SGD):
    """SGD that keeps a copy of every gradient it is asked to apply."""

    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
        self.seen: list[list[torch.Tensor | None]] = []

    def step(self, closure=None):
        self.seen.append([None if p.grad is None else p.grad.detach().clone()
                          for group in self.param_groups for p in group["params"]])
        return super().step(closure)


# -- uncertainty --------------------------------------------------------------------------
def test_uncertainty_weighting_formula():
    w = UncertaintyWeighting(3)
    with torch.no_grad():
        w.log_vars.copy_(torch.tensor([0.5, -1.0, 2.0]))
    per_task = torch.tensor([2.0, 3.0, 7.0])
    labelled = torch.tensor([5, 1, 0])
    expected = sum(0.5 * math.exp(-s) * loss + 0.5 * s
                   for s, loss in ((0.5, 2.0), (-1.0, 3.0)))  # the third task has no labels
    assert float(w(per_task, labelled).detach()) == pytest.approx(expected, rel=1e-6)
    assert torch.allclose(w.weights(), 0.5 * torch.exp(-torch.tensor([0.5, -1.0, 2.0])))


def test_uncertainty_downweights_the_noisier_task(tk, tmp_path):
    """Two regression tasks on scales 1 and 100: the learned log-variance of the large,
    noisy task grows, so its weight shrinks, and the model differs from static's."""
    h = tk.hierarchy(SCALES)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 6, generator=g)
    y = torch.stack([x[:, 0] + 0.3 * torch.randn(64, generator=g),
                     100 * (x[:, 1] + 0.3 * torch.randn(64, generator=g))], 1)
    models = {}
    for weighting in ("uncertainty", "static"):
        models[weighting] = tk.model(h)
        tg.fit(models[weighting], tk.loader(h, x, y, batch_size=16), epochs=20, lr=0.05,
               weighting=weighting, seed=0, progress=False, checkpoint_dir=tmp_path / weighting,
               standardize_targets=False)  # the two scales are what weighting must see
    log_vars = read_checkpoint(tmp_path / "uncertainty" / "last.pt")["balancer"]["log_vars"]
    small, big = log_vars.tolist()
    assert big - small > 1.5, log_vars
    weights = 0.5 * torch.exp(-log_vars)
    assert weights[1] < weights[0] / 4
    assert read_checkpoint(tmp_path / "static" / "last.pt")["balancer"] is None
    assert not tk.same_state(models["uncertainty"], models["static"])


def test_uncertainty_with_a_user_optimizer_trains_the_log_variances(tk):
    h = tk.hierarchy(SCALES)
    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(1))
    y = torch.stack([x[:, 0], 100 * x[:, 1]], 1)
    model = tk.model(h)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    tg.fit(model, tk.loader(h, x, y), epochs=3, optimizer=optimizer, weighting="uncertainty",
           seed=0, progress=False, standardize_targets=False)  # the scales are the point
    assert len(optimizer.param_groups) == 2
    (log_vars,) = optimizer.param_groups[1]["params"]
    assert log_vars.shape == (2,)
    assert log_vars[1] > log_vars[0] > -1.0 and log_vars[1] > 0


# -- PCGrad -------------------------------------------------------------------------------
def _first_step(tk, h, x, y, weighting):
    """Parameters before minus after one plain-SGD step (lr 1) of fit: the gradient used."""
    model = tk.model(h)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    tg.fit(model, tk.loader(h, x, y, batch_size=len(x), shuffle=False), epochs=1,
           optimizer=optimizer, weighting=weighting, seed=0, progress=False)
    return {k: before[k] - v for k, v in model.state_dict().items()}


def _encoder(step: dict) -> torch.Tensor:
    return _flat([v for k, v in step.items() if k.startswith("encoder.")])


def _reference_gradients(tk, h, x, y):
    """Per-task gradients on the shared encoder, computed by hand (data loss = mean of
    the two tasks' BCE, so each task's share is half of its BCE)."""
    model = tk.model(h)
    out = model(x)
    enc = list(model.encoder.parameters())
    la = F.binary_cross_entropy_with_logits(out["a"], y[:, 0]) / 2
    lb = F.binary_cross_entropy_with_logits(out["b"], y[:, 1]) / 2
    ga = _flat(torch.autograd.grad(la, enc, retain_graph=True))
    gb = _flat(torch.autograd.grad(lb, enc))
    return ga, gb


def test_pcgrad_projects_conflicting_gradients(tk):
    """Opposite labels for the same inputs through a shared encoder: the two tasks'
    gradients conflict, PCGrad removes the conflicting components (Yu et al. 2020)."""
    h = tk.hierarchy(PAIR)
    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(0))
    a = (x[:, 0] > 0).float()
    y = torch.stack([a, 1 - a], 1)
    ga, gb = _reference_gradients(tk, h, x, y)
    dot = ga @ gb
    assert dot < 0  # the premise: they conflict
    expected = (ga - dot / (gb @ gb) * gb) + (gb - dot / (ga @ ga) * ga)

    static, pcgrad = _first_step(tk, h, x, y, "static"), _first_step(tk, h, x, y, "pcgrad")
    assert torch.allclose(_encoder(static), ga + gb, atol=1e-7, rtol=1e-5)
    assert torch.allclose(_encoder(pcgrad), expected, atol=1e-7, rtol=1e-5)
    assert F.cosine_similarity(_encoder(pcgrad), _encoder(static), dim=0) < 0.99
    assert not torch.allclose(_encoder(pcgrad), _encoder(static), atol=1e-4)
    # the task-specific parameters get their ordinary gradients
    for key in static:
        if not key.startswith("encoder."):
            assert torch.allclose(pcgrad[key], static[key], atol=1e-7), key


def test_pcgrad_leaves_agreeing_gradients_alone(tk):
    h = tk.hierarchy(PAIR)
    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(0))
    a = (x[:, 0] > 0).float()
    y = torch.stack([a, a], 1)
    ga, gb = _reference_gradients(tk, h, x, y)
    assert ga @ gb > 0  # the premise: no conflict
    static, pcgrad = _first_step(tk, h, x, y, "static"), _first_step(tk, h, x, y, "pcgrad")
    assert F.cosine_similarity(_encoder(pcgrad), _encoder(static), dim=0) > 1 - 1e-5
    assert torch.allclose(_encoder(pcgrad), _encoder(static), atol=1e-7, rtol=1e-4)
    for key in static:
        assert torch.allclose(pcgrad[key], static[key], atol=1e-7, rtol=1e-4), key


def _many_binary_tasks(n: int):
    return tg.load_hierarchy({"taskgraph": 1, "name": f"many{n}",
                              "tasks": {f"t{i}": {"type": "binary"} for i in range(n)}})


def test_pcgrad_refuses_more_than_64_labelled_tasks(tk):
    n = PCGRAD_MAX_TASKS + 1
    assert n == 65
    h = _many_binary_tasks(n)
    x = torch.randn(8, 6)
    y = (torch.rand(8, n, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    with pytest.raises(tg.ArgumentError, match="64"):
        tg.fit(tk.model(h), tk.loader(h, x, y, batch_size=8), epochs=1, weighting="pcgrad",
               progress=False)
    # the limit counts labelled tasks: with most of them unlabelled it trains
    y[:, 3:] = -1
    history = tg.fit(tk.model(h), tk.loader(h, x, y, batch_size=8), epochs=1,
                     weighting="pcgrad", progress=False)
    assert set(history["per_task"][0]) == {"t0", "t1", "t2"}


# -- gradient noise -----------------------------------------------------------------------
def test_grad_noise_changes_the_weights(tk):
    h = tk.hierarchy("animals")
    data = tk.animals_data(32)
    runs = []
    for noise in (0.0, 0.0, 0.1):
        model = tk.model(h)
        tg.fit(model, tk.loader(h, *data), epochs=2, grad_noise=noise, seed=0, progress=False)
        runs.append(model)
    assert tk.same_state(runs[0], runs[1])
    assert not tk.same_state(runs[0], runs[2])


def test_grad_noise_has_the_annealed_variance(tk):
    """With every label missing and no synapses the loss has no gradient, so what the
    optimizer sees is the noise alone. Its empirical variance over the model's ~6,000
    weights at steps t = 0, 3 and 15 (batches of one) is η / (1 + t)^γ for η = 0.8 and
    γ = 0.5: 0.8, 0.4 and 0.2; its mean is 0. Tolerance: 10% on the variance (the
    estimate's relative standard error is sqrt(2 / n), under 2%)."""
    h = tk.hierarchy("animals")
    model = tk.model(h, rounds=0, encoder_spec={"hidden": [256], "dropout": 0.0})
    x, _ = tk.animals_data(16)
    y = torch.full((16, 4), float("nan"))
    optimizer = _Recorder(model.parameters(), lr=0.0)
    tg.fit(model, tk.loader(h, x, y, batch_size=1, shuffle=False), epochs=1,
           optimizer=optimizer, grad_noise=0.8, grad_noise_gamma=0.5, seed=11, progress=False)
    assert len(optimizer.seen) == 16
    for t, variance in ((0, 0.8), (3, 0.4), (15, 0.2)):
        noise = _flat([g for g in optimizer.seen[t] if g is not None])
        assert noise.numel() > 5000
        assert float(noise.var()) == pytest.approx(variance, rel=0.1), t
        assert abs(float(noise.mean())) < 4 * math.sqrt(variance / noise.numel()), t


def test_grad_noise_is_drawn_from_the_seed(tk):
    """The same seed draws the same noise, another seed other noise."""
    h = tk.hierarchy("animals")
    x, _ = tk.animals_data(16)
    y = torch.full((16, 4), float("nan"))
    seen = []
    for seed in (3, 3, 4):
        model = tk.model(h, rounds=0, encoder_spec={"hidden": [8], "dropout": 0.0})
        optimizer = _Recorder(model.parameters(), lr=0.0)
        tg.fit(model, tk.loader(h, x, y, batch_size=8), epochs=1, optimizer=optimizer,
               grad_noise=0.1, seed=seed, progress=False)
        seen.append(_flat([g for g in optimizer.seen[0] if g is not None]))
    assert torch.equal(seen[0], seen[1])
    assert not torch.allclose(seen[0], seen[2])


def test_anneal_known_values():
    assert GradientNoise(0.3, 0.55).variance(0) == pytest.approx(0.3)
    assert GradientNoise(1.0, 1.0).variance(3) == pytest.approx(0.25)
    assert GradientNoise(2.0, 0.5).variance(8) == pytest.approx(2.0 / 3.0)


def test_negative_grad_noise_is_refused(tk):
    h = tk.hierarchy("cell_functions")
    with pytest.raises(tg.ArgumentError, match="grad_noise"):
        tg.fit(tk.model(h), tk.loader(h, *tk.cell_data(16)), epochs=1, grad_noise=-0.1,
               progress=False)


# -- strategies as objects ----------------------------------------------------------------
def test_a_strategy_object_trains_like_its_name(tk):
    h = tk.hierarchy(PAIR)
    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(0))
    a = (x[:, 0] > 0).float()
    y = torch.stack([a, 1 - a], 1)
    for name, strategy in (("pcgrad", PCGrad()), ("static", Static())):
        by_name, by_object = tk.model(h), tk.model(h)
        tg.fit(by_name, tk.loader(h, x, y), epochs=2, weighting=name, seed=0, progress=False)
        tg.fit(by_object, tk.loader(h, x, y), epochs=2, weighting=strategy, seed=0,
               progress=False)
        assert tk.same_state(by_name, by_object), name


def test_uncertainty_object_holds_the_learned_weights(tk, tmp_path):
    h = tk.hierarchy(SCALES)
    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(1))
    y = torch.stack([x[:, 0], 100 * x[:, 1]], 1)
    strategy = Uncertainty()
    tg.fit(tk.model(h), tk.loader(h, x, y), epochs=3, lr=0.05, weighting=strategy, seed=0,
           progress=False, checkpoint_dir=tmp_path, standardize_targets=False)
    saved = read_checkpoint(tmp_path / "last.pt")["balancer"]["log_vars"]
    assert torch.equal(strategy.module_.log_vars.detach(), saved)
    assert saved[1] > saved[0]  # the large-scale task is the noisier one


def test_a_strategy_of_your_own_decides_the_gradient(tk):
    """A Weighting subclass replaces the objective: one that trains on task a's loss
    alone moves the shared encoder by exactly the gradient of a's BCE, computed by hand
    (one full-batch SGD step, lr 1), and that loss is what the history logs."""

    class FirstTaskOnly(Weighting):
        def loss(self, result, kl_term):
            return result.per_task[0]

    h = tk.hierarchy(PAIR)
    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(0))
    a = (x[:, 0] > 0).float()
    y = torch.stack([a, 1 - a], 1)
    ga, _ = _reference_gradients(tk, h, x, y)  # of BCE(a) / 2
    step = _first_step(tk, h, x, y, FirstTaskOnly())
    assert torch.allclose(_encoder(step), 2 * ga, atol=1e-7, rtol=1e-5)
    history = tg.fit(tk.model(h), tk.loader(h, x, y, batch_size=32), epochs=1,
                     weighting=FirstTaskOnly(), seed=0, progress=False)
    record = history.records[0]
    assert record["loss"] == pytest.approx(record["per_task"]["a"], rel=1e-6)
