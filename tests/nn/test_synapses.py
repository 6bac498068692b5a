import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Normal, kl_divergence

from taskgraph.nn.synapses import EdgeSynapses, inverse_softplus, normal_kl

MIXED = ["gaussian", "bernoulli", "fixed", "gaussian", "bernoulli"]


def test_shapes_train_and_eval():
    syn = EdgeSynapses(MIXED)
    assert syn.num_edges == 5
    assert syn(batch_size=7).shape == (7, 5)
    assert syn().shape == (5,)
    syn.eval()
    assert syn(batch_size=7).shape == (7, 5)
    assert syn().shape == (5,)
    assert syn(batch_size=3, sample=True).shape == (3, 5)
    for f in (syn.mean_weight, syn.std_weight, syn.release_probability):
        assert f().shape == (5,)


def test_empty_bank():
    syn = EdgeSynapses([])
    assert syn.num_edges == 0
    assert syn(batch_size=4).shape == (4, 0)
    assert syn(batch_size=4, sample=False).shape == (4, 0)
    assert syn().shape == (0,)
    kl = syn.kl()
    assert kl.shape == () and kl.item() == 0.0
    assert syn.table() == []
    assert syn.mean_weight().shape == (0,)
    assert "num_edges=0" in repr(syn)


def test_train_samples_differ_per_example_and_per_call():
    torch.manual_seed(0)
    syn = EdgeSynapses(["gaussian"] * 3, std=0.5)
    a = syn(batch_size=4)
    b = syn(batch_size=4)
    assert not torch.equal(a[0], a[1])
    assert not torch.equal(a, b)


def test_eval_is_deterministic_and_equals_mean():
    syn = EdgeSynapses(MIXED, mean=[1.0, 2.0, -0.5, 0.3, 4.0], p=0.25).eval()
    a, b = syn(batch_size=6), syn(batch_size=6)
    assert torch.equal(a, b)
    expected = torch.tensor([1.0, 2.0 * 0.25, -0.5, 0.3, 4.0 * 0.25])
    torch.testing.assert_close(a, expected.expand(6, 5))
    torch.testing.assert_close(syn(), expected)
    # sample=False in training mode also gives the mean
    torch.testing.assert_close(syn.train()(batch_size=2, sample=False), expected.expand(2, 5))


def test_sample_true_in_eval_mode_is_random():
    torch.manual_seed(1)
    syn = EdgeSynapses(["gaussian", "bernoulli"], std=0.3, p=0.5).eval()
    s = syn(batch_size=256, sample=True)
    assert s[:, 0].std() > 0.1
    assert set(s[:, 1].unique().tolist()) == {0.0, 1.0}


def test_initial_parameters():
    syn = EdgeSynapses(["gaussian", "gaussian", "fixed"], mean=[0.5, -1.0, 2.0], std=[0.2, 3.0, 0.0])
    torch.testing.assert_close(F.softplus(syn.rho[:2]), torch.tensor([0.2, 3.0]))
    torch.testing.assert_close(syn.mu.detach(), torch.tensor([0.5, -1.0, 2.0]))
    torch.testing.assert_close(syn.std_weight().detach(), torch.tensor([0.2, 3.0, 0.0]))
    torch.testing.assert_close(syn.release_probability().detach(), torch.ones(3))


def test_fixed_is_deterministic_learned_weight():
    syn = EdgeSynapses(["fixed"] * 2, mean=[0.7, -0.2])
    w = syn(batch_size=5)
    torch.testing.assert_close(w, torch.tensor([0.7, -0.2]).expand(5, 2))
    w.sum().backward()
    torch.testing.assert_close(syn.mu.grad, torch.tensor([5.0, 5.0]))
    assert syn.kl().item() == 0.0


def test_gradients_reach_all_parameters():
    torch.manual_seed(0)
    syn = EdgeSynapses(["gaussian", "bernoulli"], mean=1.0, std=0.2, p=0.6)
    w = syn(batch_size=64)
    (w * torch.linspace(1.0, 2.0, 64).unsqueeze(1)).pow(2).sum().backward()
    assert syn.mu.grad[0] != 0  # gaussian mean
    assert syn.rho.grad[0] != 0  # gaussian std
    assert syn.mu.grad[1] != 0  # bernoulli amplitude
    assert syn.p_logit.grad[1] != 0  # bernoulli release probability (straight-through)
    assert torch.isfinite(syn.p_logit.grad).all() and torch.isfinite(syn.rho.grad).all()


def test_kl_gradients_reach_rho_and_p_logit():
    syn = EdgeSynapses(["gaussian", "bernoulli"], p=0.9, prior_p=0.5, std=0.1, prior_std=1.0)
    syn.kl().backward()
    assert syn.rho.grad[0] != 0
    assert syn.p_logit.grad[1] != 0


def test_learn_p_false_keeps_logit_as_buffer():
    syn = EdgeSynapses(["bernoulli"], p=0.3, learn_p=False)
    names = {n for n, _ in syn.named_parameters()}
    assert names == {"mu", "rho"}
    assert "p_logit" in dict(syn.named_buffers())
    torch.testing.assert_close(syn.release_probability(), torch.tensor([0.3]))


def test_state_dict_holds_learned_state_only():
    syn = EdgeSynapses(MIXED)
    assert set(syn.state_dict()) == {"mu", "rho", "p_logit"}


def test_gaussian_kl_matches_torch_distributions():
    torch.manual_seed(0)
    syn = EdgeSynapses(["gaussian"] * 4, prior_mean=[0.0, 1.0, -1.0, 0.5], prior_std=[1.0, 0.5, 2.0, 0.3])
    with torch.no_grad():
        syn.mu.copy_(torch.randn(4))
        syn.rho.copy_(torch.randn(4))
    q = Normal(syn.mu.detach(), F.softplus(syn.rho.detach()))
    prior = Normal(torch.tensor([0.0, 1.0, -1.0, 0.5]), torch.tensor([1.0, 0.5, 2.0, 0.3]))
    torch.testing.assert_close(syn.kl().detach(), kl_divergence(q, prior).sum())


def test_prior_mean_defaults_to_initial_mean():
    syn = EdgeSynapses(["gaussian"] * 2, mean=[3.0, -2.0], std=0.1, prior_std=1.0)
    expected = kl_divergence(Normal(0.0, 0.1), Normal(0.0, 1.0)) * 2
    torch.testing.assert_close(syn.kl().detach(), expected)


def test_bernoulli_kl_matches_torch_distributions():
    p = [0.1, 0.5, 0.9, 1.0]
    prior_p = [0.5, 0.2, 0.7, 0.5]
    syn = EdgeSynapses(["bernoulli"] * 4, p=p, prior_p=prior_p)
    q = Bernoulli(probs=syn.release_probability().detach())
    expected = kl_divergence(q, Bernoulli(probs=torch.tensor(prior_p))).sum()
    torch.testing.assert_close(syn.kl().detach(), expected, rtol=1e-4, atol=1e-5)


def test_mixed_kl_is_sum_of_parts():
    syn = EdgeSynapses(["gaussian", "bernoulli", "fixed"], mean=2.0, std=0.3, p=0.8, prior_mean=0.0)
    gauss = kl_divergence(Normal(2.0, 0.3), Normal(0.0, 1.0))
    bern = kl_divergence(Bernoulli(probs=torch.tensor(0.8)), Bernoulli(probs=torch.tensor(0.5)))
    torch.testing.assert_close(syn.kl().detach(), gauss + bern)


def test_empirical_moments_match_mean_and_std():
    # Analytic values from the constructor's arguments: gaussian N(mean, std^2);
    # bernoulli mean * Bernoulli(p), so E = mean p and std = |mean| sqrt(p (1 - p));
    # fixed: mean, no spread.
    torch.manual_seed(0)
    mean = [1.0, 2.0, -0.5, -0.3, 1.5]
    std = [0.5, 0.1, 0.1, 0.2, 0.1]
    p = [0.9, 0.3, 0.9, 0.9, 0.8]
    syn = EdgeSynapses(MIXED, mean=mean, std=std, p=p)
    expected_mean = torch.tensor([1.0, 2.0 * 0.3, -0.5, -0.3, 1.5 * 0.8])
    expected_std = torch.tensor([0.5, 2.0 * math.sqrt(0.3 * 0.7), 0.0, 0.2,
                                 1.5 * math.sqrt(0.8 * 0.2)])
    n = 40_000
    with torch.no_grad():
        s = syn(batch_size=n)
        torch.testing.assert_close(syn.mean_weight(), expected_mean)
        torch.testing.assert_close(syn.std_weight(), expected_std)
    # 5 standard errors: sigma / sqrt(n) for the mean, about sigma / sqrt(2 n) for the std
    # (a bernoulli's std has a larger error, sqrt((1 - 4 p (1 - p)) / (4 p (1 - p) n)) sigma,
    # still below 1.2 sigma / sqrt(n) for these p)
    se = expected_std / math.sqrt(n)
    assert ((s.mean(0) - expected_mean).abs() <= 5 * se + 1e-6).all(), s.mean(0)
    assert ((s.std(0) - expected_std).abs() <= 5 * 1.2 * se + 1e-6).all(), s.std(0)
    assert (s[:, 2] == -0.5).all()  # the fixed edge never moves


def test_bernoulli_release_frequency():
    torch.manual_seed(0)
    p = torch.tensor([0.05, 0.3, 0.5, 0.95])
    syn = EdgeSynapses(["bernoulli"] * 4, mean=1.0, p=p.tolist())
    with torch.no_grad():
        s = syn(batch_size=40_000)
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(s.mean(0), p, atol=0.01, rtol=0.0)


def test_release_probability_one_is_allowed():
    torch.manual_seed(0)
    syn = EdgeSynapses(["bernoulli"], mean=2.0, p=1.0)
    assert torch.isfinite(syn.p_logit).all()
    assert syn.release_probability().item() == pytest.approx(1.0, abs=1e-5)
    assert (syn(batch_size=1000) == 2.0).all()
    assert math.isfinite(syn.kl().item())


def test_table():
    syn = EdgeSynapses(["gaussian", "bernoulli", "fixed"], mean=2.0, std=0.3, p=0.5)
    rows = syn.table()
    assert [r["kind"] for r in rows] == ["gaussian", "bernoulli", "fixed"]
    assert all(isinstance(v, float) for r in rows for k, v in r.items() if k != "kind")
    assert rows[0] == pytest.approx({"kind": "gaussian", "mean": 2.0, "std": 0.3, "p": 1.0})
    assert rows[1] == pytest.approx({"kind": "bernoulli", "mean": 1.0, "std": 1.0, "p": 0.5})
    assert rows[2] == pytest.approx({"kind": "fixed", "mean": 2.0, "std": 0.0, "p": 1.0})


def test_reset_parameters_restores_initial_state():
    syn = EdgeSynapses(MIXED, mean=0.4, std=0.2, p=0.7)
    before = {k: v.clone() for k, v in syn.state_dict().items()}
    with torch.no_grad():
        for param in syn.parameters():
            param.add_(1.0)
    syn.reset_parameters()
    for k, v in syn.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_follows_module_dtype():
    syn = EdgeSynapses(MIXED).double()
    assert syn(batch_size=3).dtype == torch.float64
    assert syn.eval()(batch_size=3).dtype == torch.float64
    assert syn.kl().dtype == torch.float64


def test_repr():
    syn = EdgeSynapses(MIXED, learn_p=False, temperature=0.25)
    assert repr(syn) == (
        "EdgeSynapses(num_edges=5, gaussian=2, bernoulli=2, fixed=1, learn_p=False, temperature=0.25)"
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kinds=["gaussian", "gausian"]), r"'gausian' at index 1.*did you mean 'gaussian'"),
        (dict(kinds=["fixed", "spiky"]), r"unknown synapse kind 'spiky' at index 1"),
        (dict(kinds="gaussian"), r"sequence of kind names.*the string 'gaussian'"),
        (dict(kinds=["bernoulli"], p=0.0), r"`p` to be a probability in \(0, 1\], got 0 at edge 0"),
        (dict(kinds=["bernoulli"], p=1.5), r"`p` to be a probability in \(0, 1\], got 1.5"),
        (dict(kinds=["gaussian"], std=-0.1), r"`std` to be a value >= 0, got -0.1"),
        (dict(kinds=["fixed", "gaussian"], std=[0.0, 0.0]), r"> 0 on gaussian edges, got 0 at edge 1"),
        (dict(kinds=["gaussian"] * 2, mean=[1.0, 2.0, 3.0]), r"sequence of 2 floats.*got shape \(3,\)"),
        (dict(kinds=["gaussian"], prior_std=0.0), r"`prior_std` to be a value > 0"),
        (dict(kinds=["bernoulli"], prior_p=1.0), r"`prior_p` to be a probability in \(0, 1\)"),
        (dict(kinds=["gaussian"], mean=float("nan")), r"`mean` to be finite"),
        (dict(kinds=["gaussian"], temperature=0.0), r"`temperature` to be a float > 0, got 0.0"),
        (dict(kinds=["gaussian"], mean="big"), r"`mean` to be a float or a sequence"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    kinds = kwargs.pop("kinds")
    with pytest.raises(ValueError, match=match):
        EdgeSynapses(kinds, **kwargs)


def test_fixed_edges_accept_zero_std():
    syn = EdgeSynapses(["fixed"], std=0.0)
    assert syn.std_weight().item() == 0.0


@pytest.mark.parametrize("batch_size", [-1, 2.0, True])
def test_bad_batch_size_raises(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        EdgeSynapses(["gaussian"])(batch_size)


def test_helpers():
    x = torch.tensor([1e-4, 0.01, 1.0, 50.0], dtype=torch.float64)
    torch.testing.assert_close(F.softplus(inverse_softplus(x)), x)
    mu, sigma = torch.tensor([0.3, -1.0]), torch.tensor([0.5, 2.0])
    torch.testing.assert_close(
        normal_kl(mu, sigma, 0.1, 0.7), kl_divergence(Normal(mu, sigma), Normal(0.1, 0.7))
    )


DEVICES = ["meta"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_the_module_device(device):
    # "meta" tensors catch any tensor created on the CPU by accident without needing a GPU
    syn = EdgeSynapses(MIXED).to(device)
    for out in (syn(batch_size=3), syn.eval()(batch_size=3), syn(batch_size=3, sample=True), syn.kl()):
        assert out.device.type == device
