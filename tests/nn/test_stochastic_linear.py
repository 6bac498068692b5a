import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Normal, kl_divergence

from taskgraph.nn.stochastic_linear import StochasticLinear, TaskLinear


def _sigma(rho: torch.Tensor) -> torch.Tensor:
    return torch.log1p(torch.exp(rho.detach()))


# ---------------------------------------------------------------- StochasticLinear


def test_stochastic_linear_shapes():
    layer = StochasticLinear(6, 3)
    assert layer(torch.randn(5, 6)).shape == (5, 3)
    assert layer(torch.randn(2, 4, 6)).shape == (2, 4, 3)
    assert layer(torch.randn(6)).shape == (3,)
    assert layer.eval()(torch.randn(2, 4, 6)).shape == (2, 4, 3)


def test_stochastic_linear_initial_state():
    layer = StochasticLinear(9, 4, init_std=0.05)
    torch.testing.assert_close(_sigma(layer.weight_rho), torch.full((4, 9), 0.05))
    torch.testing.assert_close(_sigma(layer.bias_rho), torch.full((4,), 0.05))
    assert layer.weight.abs().max() <= 1 / 3 and layer.bias.abs().max() <= 1 / 3
    assert layer.weight.std() > 0


def test_stochastic_linear_eval_is_deterministic_mean():
    layer = StochasticLinear(6, 3, init_std=0.5).eval()
    x = torch.randn(5, 6)
    y = layer(x)
    assert torch.equal(y, layer(x))
    torch.testing.assert_close(y, x @ layer.weight.T + layer.bias)
    torch.testing.assert_close(layer.train()(x, sample=False), y)


def test_stochastic_linear_train_samples_differ():
    torch.manual_seed(0)
    layer = StochasticLinear(6, 3, init_std=0.5)
    x = torch.randn(1, 6).expand(4, 6)
    a = layer(x)
    assert not torch.equal(a[0], a[1])  # each example has its own noise
    assert not torch.equal(a, layer(x))
    assert not torch.equal(layer.eval()(x, sample=True), layer(x))


def test_stochastic_linear_samples_match_explicitly_sampled_weights():
    # The oracle: draw whole weight matrices from the posterior N(mu, sigma^2) and apply
    # each with a plain matmul. Local reparameterization must give outputs with the same
    # per-entry distribution, so the two sets of samples must agree in mean and variance.
    torch.manual_seed(0)
    layer = StochasticLinear(5, 3).double()
    g = torch.Generator().manual_seed(1)
    w_sigma = 0.1 + 0.5 * torch.rand(3, 5, generator=g, dtype=torch.float64)
    b_sigma = 0.1 + 0.5 * torch.rand(3, generator=g, dtype=torch.float64)
    _set_posterior_std(layer.weight_rho, w_sigma)
    _set_posterior_std(layer.bias_rho, b_sigma)
    x = torch.randn(4, 5, generator=g, dtype=torch.float64)
    n = 40_000
    w = layer.weight.detach() + w_sigma * torch.randn(n, 3, 5, generator=g, dtype=torch.float64)
    b = layer.bias.detach() + b_sigma * torch.randn(n, 3, generator=g, dtype=torch.float64)
    explicit = x @ w.transpose(1, 2) + b[:, None, :]  # (n, 4, 3): one matmul per draw
    with torch.no_grad():
        local = layer(x.expand(n, 4, 5))  # (n, 4, 3): one draw per row
        mean, var = layer.moments(x)  # (4, 3) each
    _assert_same_moments(local, explicit, n)
    _assert_moments_match_samples(mean, var, explicit, n)


def _set_posterior_std(rho: torch.Tensor, sigma: torch.Tensor) -> None:
    """Set ``rho`` so that softplus(rho) = sigma (the layer's parameterization)."""
    with torch.no_grad():
        rho.copy_(torch.log(torch.expm1(sigma)))


def _assert_same_moments(a: torch.Tensor, b: torch.Tensor, n: int) -> None:
    """Two sets of ``n`` samples (over dim 0) of the same gaussians agree in mean and variance.

    With per-entry variance v, the difference of the two sample means has std
    sqrt(2 v / n), and that of the two sample variances v * sqrt(4 / (n - 1)); each is
    allowed 5 standard errors (a false alarm has p = 6e-7 per entry, a dozen entries a test).
    """
    v = b.var(0)
    assert ((a.mean(0) - b.mean(0)).abs() <= 5 * (2 * v / n).sqrt()).all()
    torch.testing.assert_close(a.var(0), v, atol=0.0, rtol=5 * (4 / (n - 1)) ** 0.5)


def _assert_moments_match_samples(mean: torch.Tensor, var: torch.Tensor, samples: torch.Tensor,
                                  n: int) -> None:
    """``mean`` / ``var`` are within 5 standard errors of the sample mean / variance."""
    assert ((mean.detach() - samples.mean(0)).abs() <= 5 * (var.detach() / n).sqrt()).all()
    torch.testing.assert_close(var.detach(), samples.var(0), atol=0.0,
                               rtol=5 * (2 / (n - 1)) ** 0.5)


def test_stochastic_linear_kl_matches_torch_distributions():
    torch.manual_seed(0)
    layer = StochasticLinear(4, 2, prior_std=0.7)
    with torch.no_grad():
        layer.weight_rho.normal_()
        layer.bias_rho.normal_()
    prior = Normal(0.0, 0.7)
    expected = (
        kl_divergence(Normal(layer.weight.detach(), _sigma(layer.weight_rho)), prior).sum()
        + kl_divergence(Normal(layer.bias.detach(), _sigma(layer.bias_rho)), prior).sum()
    )
    kl = layer.kl()
    assert kl.shape == ()
    torch.testing.assert_close(kl.detach(), expected)


def test_stochastic_linear_gradients():
    torch.manual_seed(0)
    layer = StochasticLinear(4, 2, init_std=0.1)
    (layer(torch.randn(8, 4)).pow(2).sum() + layer.kl()).backward()
    for name, param in layer.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_stochastic_linear_no_bias():
    layer = StochasticLinear(4, 2, bias=False)
    assert layer.bias is None and layer.bias_rho is None
    assert {n for n, _ in layer.named_parameters()} == {"weight", "weight_rho"}
    x = torch.randn(3, 4)
    torch.testing.assert_close(layer.eval()(x), x @ layer.weight.T)
    assert torch.isfinite(layer.kl())
    # zero input, zero variance: the sample and its gradient stay finite
    layer.train()(torch.zeros(2, 4)).sum().backward()
    assert torch.isfinite(layer.weight_rho.grad).all()


def test_stochastic_linear_dtype():
    layer = StochasticLinear(4, 2).double()
    assert layer(torch.randn(3, 4, dtype=torch.float64)).dtype == torch.float64
    assert layer.kl().dtype == torch.float64


def test_stochastic_linear_repr():
    assert repr(StochasticLinear(16, 4, bias=False, prior_std=0.5, init_std=0.01)) == (
        "StochasticLinear(in_features=16, out_features=4, bias=False, prior_std=0.5, init_std=0.01)"
    )


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((0, 3), {}, r"`in_features` to be an int >= 1, got 0"),
        ((3, 2.5), {}, r"`out_features` to be an int >= 1, got 2.5"),
        ((3, 2), {"prior_std": -1.0}, r"`prior_std` to be a finite float > 0, got -1.0"),
        ((3, 2), {"init_std": 0.0}, r"`init_std` to be a finite float > 0, got 0.0"),
    ],
)
def test_stochastic_linear_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        StochasticLinear(*args, **kwargs)


@pytest.mark.parametrize("sample", [True, False])
def test_stochastic_linear_wrong_input_shape(sample):
    layer = StochasticLinear(6, 3)
    with pytest.raises(ValueError, match=r"expected input of shape \(\.\.\., 6\), got \(5, 7\)"):
        layer(torch.randn(5, 7), sample=sample)


# ---------------------------------------------------------------- TaskLinear


def _reference(layer: TaskLinear, x: torch.Tensor) -> torch.Tensor:
    """Per-task loop, y[:, t] = x_t @ W[t] + b[t]."""
    outs = []
    for t in range(layer.num_tasks):
        xt = x if layer.shared_input else x[:, t]
        y = xt @ layer.task_weight()[t]
        if layer.bias is not None:
            y = y + layer.bias[t]
        outs.append(y)
    return torch.stack(outs, dim=1).detach()


@pytest.mark.parametrize("shared_input", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_task_linear_matches_per_task_loop(shared_input, bias):
    torch.manual_seed(0)
    layer = TaskLinear(4, 5, 3, shared_input=shared_input, bias=bias)
    x = torch.randn(7, 5) if shared_input else torch.randn(7, 4, 5)
    y = layer(x)
    assert y.shape == (7, 4, 3)
    torch.testing.assert_close(y.detach(), _reference(layer, x))


@settings(max_examples=25, deadline=None)
@given(
    num_tasks=st.integers(1, 6),
    in_features=st.integers(1, 7),
    out_features=st.integers(1, 5),
    batch=st.integers(0, 4),
    shared_input=st.booleans(),
)
def test_task_linear_matches_loop_any_shape(num_tasks, in_features, out_features, batch, shared_input):
    layer = TaskLinear(num_tasks, in_features, out_features, shared_input=shared_input)
    shape = (batch, in_features) if shared_input else (batch, num_tasks, in_features)
    x = torch.randn(shape)
    torch.testing.assert_close(layer(x).detach(), _reference(layer, x))


def test_task_linear_init_like_linear():
    layer = TaskLinear(50, 16, 8)
    assert layer.weight.shape == (50, 16, 8) and layer.bias.shape == (50, 8)
    assert layer.weight.abs().max() <= 0.25 and layer.bias.abs().max() <= 0.25
    assert layer.weight.std() > 0.1
    assert layer.weight_rho is None and layer.bias_rho is None


def test_task_linear_deterministic_kl_is_zero():
    layer = TaskLinear(3, 4, 2).double()
    kl = layer.kl()
    assert kl.shape == () and kl.item() == 0.0 and kl.dtype == torch.float64
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    assert torch.equal(layer(x), layer(x))  # training mode, but nothing to sample


@pytest.mark.parametrize("shared_input", [True, False])
def test_task_linear_stochastic_modes(shared_input):
    torch.manual_seed(0)
    layer = TaskLinear(3, 4, 2, shared_input=shared_input, stochastic=True, init_std=0.3)
    torch.testing.assert_close(_sigma(layer.weight_rho), torch.full(layer.weight_shape, 0.3))
    x = torch.randn(5, 4) if shared_input else torch.randn(5, 3, 4)
    a, b = layer(x), layer(x)
    assert a.shape == (5, 3, 2) and not torch.equal(a, b)
    layer.eval()
    assert torch.equal(layer(x), layer(x))
    torch.testing.assert_close(layer(x).detach(), _reference(layer, x))


@pytest.mark.parametrize("shared_input", [True, False])
def test_task_linear_samples_match_explicitly_sampled_weights(shared_input):
    # As for StochasticLinear: T weight matrices drawn from the posterior, applied per
    # task with plain matmuls, against the layer's local-reparameterization samples.
    torch.manual_seed(0)
    T, i, o, B = 3, 4, 2, 2
    layer = TaskLinear(T, i, o, shared_input=shared_input, stochastic=True).double()
    g = torch.Generator().manual_seed(1)
    w_sigma = 0.1 + 0.5 * torch.rand(T, i, o, generator=g, dtype=torch.float64)
    b_sigma = 0.1 + 0.5 * torch.rand(T, o, generator=g, dtype=torch.float64)
    _set_posterior_std(layer.weight_rho, w_sigma.transpose(0, 1) if shared_input else w_sigma)
    _set_posterior_std(layer.bias_rho, b_sigma)
    shape = (B, i) if shared_input else (B, T, i)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    n = 40_000
    w = layer.task_weight().detach() + w_sigma * torch.randn(n, T, i, o, generator=g,
                                                      dtype=torch.float64)
    b = layer.bias.detach() + b_sigma * torch.randn(n, T, o, generator=g, dtype=torch.float64)
    explicit = torch.stack(  # (n, B, T, o): task t's input times its own drawn matrix
        [(x if shared_input else x[:, t]) @ w[:, t] + b[:, t, None] for t in range(T)], dim=2)
    with torch.no_grad():
        local = layer(x.expand(n, *x.shape))  # (n, B, T, o)
        mean, var = layer.moments(x)  # (B, T, o) each
    _assert_same_moments(local, explicit, n)
    _assert_moments_match_samples(mean, var, explicit, n)


def test_task_linear_kl_and_gradients():
    torch.manual_seed(0)
    layer = TaskLinear(3, 4, 2, stochastic=True, prior_std=2.0)
    with torch.no_grad():
        layer.weight_rho.normal_()
        layer.bias_rho.normal_()
    prior = Normal(0.0, 2.0)
    expected = (
        kl_divergence(Normal(layer.weight.detach(), _sigma(layer.weight_rho)), prior).sum()
        + kl_divergence(Normal(layer.bias.detach(), _sigma(layer.bias_rho)), prior).sum()
    )
    torch.testing.assert_close(layer.kl().detach(), expected)
    (layer(torch.randn(6, 3, 4)).pow(2).sum() + layer.kl()).backward()
    for name, param in layer.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_task_linear_repr():
    assert repr(TaskLinear(4, 8, 3, shared_input=True)) == (
        "TaskLinear(num_tasks=4, in_features=8, out_features=3, shared_input=True, "
        "bias=True, stochastic=False)"
    )
    assert repr(TaskLinear(4, 8, 3, bias=False, stochastic=True, init_std=0.01)) == (
        "TaskLinear(num_tasks=4, in_features=8, out_features=3, shared_input=False, "
        "bias=False, stochastic=True, prior_std=1.0, init_std=0.01)"
    )


@pytest.mark.parametrize(
    "shared_input, shape, match",
    [
        (True, (5, 7), r"expected input of shape \(\.\.\., 8\) \(shared_input=True\), got \(5, 7\)"),
        (False, (5, 8), r"expected input of shape \(\.\.\., 4, 8\) \(shared_input=False\), got \(5, 8\)"),
        (False, (5, 3, 8), r"got \(5, 3, 8\)"),
        (False, (5, 4, 7), r"got \(5, 4, 7\)"),
    ],
)
@pytest.mark.parametrize("stochastic", [True, False])
def test_task_linear_wrong_input_shape(shared_input, shape, match, stochastic):
    layer = TaskLinear(4, 8, 3, shared_input=shared_input, stochastic=stochastic)
    with pytest.raises(ValueError, match=match):
        layer(torch.randn(shape))


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((0, 3, 2), {}, r"`num_tasks` to be an int >= 1, got 0"),
        ((2, -1, 2), {}, r"`in_features` to be an int >= 1, got -1"),
        ((2, 3, 2), {"stochastic": True, "init_std": -0.1}, r"`init_std` to be a finite float > 0"),
    ],
)
def test_task_linear_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        TaskLinear(*args, **kwargs)


DEVICES = ["meta"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_the_module_device(device):
    # "meta" tensors catch any tensor created on the CPU by accident without needing a GPU
    layers = [
        (StochasticLinear(4, 2), torch.randn(3, 4)),
        (TaskLinear(3, 4, 2, stochastic=True), torch.randn(5, 3, 4)),
        (TaskLinear(3, 4, 2, shared_input=True), torch.randn(5, 4)),
    ]
    for layer, x in layers:
        layer, x = layer.to(device), x.to(device)
        for out in (layer(x), layer(x, sample=False), layer.kl()):
            assert out.device.type == device


@pytest.mark.parametrize("stochastic", [True, False])
def test_task_linear_shared_input_is_one_contiguous_matrix(stochastic):
    # Fused optimizers copy a strided parameter every step; a shared-input weight is one
    # contiguous (F_in, T, F_out) block, and task t's map is its column block t.
    layer = TaskLinear(5, 3, 2, shared_input=True, stochastic=stochastic)
    assert layer.weight.shape == (3, 5, 2) and layer.weight.is_contiguous()
    assert all(p.is_contiguous() for p in layer.parameters())
    torch.testing.assert_close(layer.task_weight()[4], layer.weight[:, 4])


@pytest.mark.parametrize("shared_input", [True, False])
@pytest.mark.parametrize("stochastic", [True, False])
def test_task_linear_state_dict_is_task_first(shared_input, stochastic):
    torch.manual_seed(0)
    layer = TaskLinear(5, 3, 2, shared_input=shared_input, stochastic=stochastic)
    state = layer.state_dict()
    assert state["weight"].shape == (5, 3, 2)
    torch.testing.assert_close(state["weight"][4], layer.task_weight()[4].detach())
    if stochastic:
        assert state["weight_rho"].shape == (5, 3, 2)
    # a fresh layer loaded from it (also from a contiguous copy, as a file gives) is the same
    x = torch.randn(4, 3) if shared_input else torch.randn(4, 5, 3)
    for source in (state, {k: v.contiguous().clone() for k, v in state.items()}):
        other = TaskLinear(5, 3, 2, shared_input=shared_input, stochastic=stochastic)
        other.load_state_dict(source)
        torch.testing.assert_close(other.eval()(x), layer.eval()(x))
    assert layer.state_dict()["weight"].shape == (5, 3, 2)  # loading left the source alone


def test_task_linear_state_dict_wrong_shape_is_refused():
    layer = TaskLinear(5, 3, 2, shared_input=True)
    state = {k: v.clone() for k, v in layer.state_dict().items()}
    state["weight"] = torch.zeros(5, 4, 2)
    with pytest.raises(RuntimeError, match="size mismatch for weight"):
        TaskLinear(5, 3, 2, shared_input=True).load_state_dict(state)
