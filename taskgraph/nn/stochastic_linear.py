"""Linear layers whose weights are stochastic synapses (local reparameterization)."""

from __future__ import annotations

import math
from typing import Any
from numbers import Real

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from taskgraph.nn.synapses import inverse_softplus, normal_kl
from taskgraph.nn.task_dot import task_dot

__all__ = ["StochasticLinear", "TaskLinear"]


def _check_int(owner: str, name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{owner}: expected `{name}` to be an int >= {minimum}, got {value!r}")
    return value


def _check_positive(owner: str, name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < math.inf:
        raise ValueError(f"{owner}: expected `{name}` to be a finite float > 0, got {value!r}")
    return float(value)


def _reparameterize(mean: Tensor, var: Tensor) -> Tensor:
    """One sample of N(mean, var) per entry, differentiable in mean and var."""
    # the clamp keeps the gradient of sqrt finite where the variance is exactly 0
    return mean + torch.sqrt(var.clamp_min(1e-16)) * torch.randn_like(mean)


class StochasticLinear(nn.Module):
    r"""A Bayesian linear layer trained with the local reparameterization trick, from the
    `"Variational Dropout and the Local Reparameterization Trick"
    <https://arxiv.org/abs/1506.02557>`_ paper (Kingma et al., 2015).

    Every weight and bias entry is an independent gaussian synapse
    :math:`W_{ij} \sim \mathcal{N}(\mu_{ij}, \mathrm{softplus}(\rho_{ij})^2)`. Instead of
    sampling a weight matrix, the layer samples its (gaussian) pre-activations, which gives
    every example its own noise at the cost of two matrix products:

    .. math::
        \mathbf{m} = \mathbf{x} \boldsymbol{\mu}_W^{\top} + \boldsymbol{\mu}_b, \qquad
        \mathbf{v} = \mathbf{x}^2 (\boldsymbol{\sigma}_W^2)^{\top} + \boldsymbol{\sigma}_b^2,
        \qquad
        \mathbf{y} = \mathbf{m} + \sqrt{\mathbf{v}} \odot \boldsymbol{\epsilon},
        \quad \boldsymbol{\epsilon} \sim \mathcal{N}(\mathbf{0}, \mathbf{I})

    When not sampling, :math:`\mathbf{y} = \mathbf{m}`. :meth:`kl` is the closed-form KL
    divergence of the posterior to the prior :math:`\mathcal{N}(0, \sigma_0^2)`, summed over
    all entries. ``weight`` and ``bias`` hold the posterior means, with the same names and
    shapes as in :class:`torch.nn.Linear`.

    Args:
        in_features (int): size of each input sample.
        out_features (int): size of each output sample.
        bias (bool, optional): if :obj:`False`, the layer learns no bias. (default: :obj:`True`)
        prior_std (float, optional): standard deviation :math:`\sigma_0` of the prior.
            (default: :obj:`1.0`)
        init_std (float, optional): initial posterior standard deviation of every entry.
            (default: :obj:`1e-3`)

    Shapes:
        - **input:** :math:`(*, F_{in})`
        - **output:** :math:`(*, F_{out})`

    Example:
        >>> import torch
        >>> from taskgraph.nn.stochastic_linear import StochasticLinear
        >>> layer = StochasticLinear(16, 4)
        >>> layer
        StochasticLinear(in_features=16, out_features=4, bias=True, prior_std=1.0, init_std=0.001)
        >>> x = torch.randn(8, 16)
        >>> layer(x).shape  # training mode: sampled
        torch.Size([8, 4])
        >>> layer.eval()
        StochasticLinear(in_features=16, out_features=4, bias=True, prior_std=1.0, init_std=0.001)
        >>> torch.equal(layer(x), layer(x))  # evaluation mode: the mean, deterministic
        True
        >>> layer.kl().shape
        torch.Size([])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        prior_std: float = 1.0,
        init_std: float = 1e-3,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.in_features = _check_int(name, "in_features", in_features)
        self.out_features = _check_int(name, "out_features", out_features)
        self.prior_std = _check_positive(name, "prior_std", prior_std)
        self.init_std = _check_positive(name, "init_std", init_std)

        self.weight = nn.Parameter(torch.empty(out_features, in_features))  # (F_out, F_in)
        self.weight_rho = nn.Parameter(torch.empty(out_features, in_features))  # (F_out, F_in)
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features))  # (F_out,)
            self.bias_rho = nn.Parameter(torch.empty(out_features))  # (F_out,)
        else:
            self.register_parameter("bias", None)
            self.register_parameter("bias_rho", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Means as in :class:`torch.nn.Linear`, standard deviations set to ``init_std``."""
        bound = 1.0 / math.sqrt(self.in_features)
        rho = inverse_softplus(torch.tensor(self.init_std, dtype=torch.float64)).item()
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            self.weight_rho.fill_(rho)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)
                self.bias_rho.fill_(rho)

    def _check_input(self, x: Tensor) -> None:
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"{type(self).__name__}: expected input of shape (..., {self.in_features}), "
                f"got {tuple(x.shape)}"
            )

    def moments(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and variance of the output for input ``x``, each of shape :math:`(*, F_{out})`."""
        self._check_input(x)
        mean = F.linear(x, self.weight, self.bias)  # (*, F_out)
        bias_var = None if self.bias_rho is None else F.softplus(self.bias_rho).pow(2)
        var = F.linear(x * x, F.softplus(self.weight_rho).pow(2), bias_var)  # (*, F_out)
        return mean, var

    def forward(self, x: Tensor, *, sample: bool | None = None) -> Tensor:
        """Apply the layer; ``sample`` (default: ``self.training``) draws noisy outputs."""
        sample = self.training if sample is None else bool(sample)
        if not sample:
            self._check_input(x)
            return F.linear(x, self.weight, self.bias)  # (*, F_out)
        mean, var = self.moments(x)
        return _reparameterize(mean, var)

    def kl(self) -> Tensor:
        """Closed-form KL of the weight (and bias) posterior to the prior, summed (0-dim)."""
        kl = normal_kl(self.weight, F.softplus(self.weight_rho), 0.0, self.prior_std).sum()
        if self.bias is not None:
            kl = kl + normal_kl(self.bias, F.softplus(self.bias_rho), 0.0, self.prior_std).sum()
        return kl

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, prior_std={self.prior_std}, init_std={self.init_std}"
        )


class TaskLinear(nn.Module):
    r"""Batched per-task linear maps: :math:`T` independent linear layers applied in one
    einsum, never a Python loop over tasks.

    With ``shared_input=True`` every task reads the same input (the per-task projections of a
    shared encoder output); otherwise task :math:`t` reads its own slice of the input (the
    batched heads):

    .. math::
        \mathbf{y}_{b,t} = \mathbf{W}_t^{\top} \mathbf{x}_b + \mathbf{b}_t
        \quad \text{(shared)}, \qquad
        \mathbf{y}_{b,t} = \mathbf{W}_t^{\top} \mathbf{x}_{b,t} + \mathbf{b}_t
        \quad \text{(per task)}

    With ``stochastic=True`` the weights are gaussian synapses trained with the local
    reparameterization trick exactly as in :class:`StochasticLinear`: the output is
    :math:`\mathbf{m} + \sqrt{\mathbf{v}} \odot \boldsymbol{\epsilon}` with
    :math:`\mathbf{v}_{b,t} = (\boldsymbol{\sigma}_{W_t}^{2})^{\top} \mathbf{x}_b^2 +
    \boldsymbol{\sigma}_{b_t}^2`, and :meth:`kl` is the KL to :math:`\mathcal{N}(0, \sigma_0^2)`.
    ``weight`` (and ``weight_rho``) has shape :math:`(T, F_{in}, F_{out})`, or
    :math:`(F_{in}, T, F_{out})` with ``shared_input``: then all :math:`T` maps are one
    contiguous :math:`(F_{in}, T F_{out})` matrix, so the forward pass is one GEMM and the
    optimizer's fused kernels update it in place (a strided parameter costs them a copy
    of it every step). The state dict always holds :math:`(T, F_{in}, F_{out})`, task
    first, in either mode. ``bias`` is :math:`(T, F_{out})`; each task is initialized
    like :class:`torch.nn.Linear`.

    Args:
        num_tasks (int): number of tasks :math:`T`.
        in_features (int): input size :math:`F_{in}` per task.
        out_features (int): output size :math:`F_{out}` per task.
        shared_input (bool, optional): if :obj:`True`, all tasks read one input
            :math:`(*, F_{in})`; else input :math:`(*, T, F_{in})`. (default: :obj:`False`)
        bias (bool, optional): if :obj:`False`, no bias is learned. (default: :obj:`True`)
        stochastic (bool, optional): make the weights gaussian synapses. (default: :obj:`False`)
        prior_std (float, optional): prior standard deviation when stochastic.
            (default: :obj:`1.0`)
        init_std (float, optional): initial posterior standard deviation when stochastic.
            (default: :obj:`1e-3`)

    Shapes:
        - **input:** :math:`(*, F_{in})` if ``shared_input`` else :math:`(*, T, F_{in})`
        - **output:** :math:`(*, T, F_{out})`

    Example:
        >>> import torch
        >>> from taskgraph.nn.stochastic_linear import TaskLinear
        >>> proj = TaskLinear(5, 16, 8, shared_input=True)
        >>> proj  # doctest: +NORMALIZE_WHITESPACE
        TaskLinear(num_tasks=5, in_features=16, out_features=8, shared_input=True, bias=True,
        stochastic=False)
        >>> proj(torch.randn(32, 16)).shape
        torch.Size([32, 5, 8])
        >>> heads = TaskLinear(5, 8, 1, stochastic=True)
        >>> heads(torch.randn(32, 5, 8)).shape
        torch.Size([32, 5, 1])
    """

    def __init__(
        self,
        num_tasks: int,
        in_features: int,
        out_features: int,
        *,
        shared_input: bool = False,
        bias: bool = True,
        stochastic: bool = False,
        prior_std: float = 1.0,
        init_std: float = 1e-3,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.num_tasks = _check_int(name, "num_tasks", num_tasks)
        self.in_features = _check_int(name, "in_features", in_features)
        self.out_features = _check_int(name, "out_features", out_features)
        self.shared_input = bool(shared_input)
        self.stochastic = bool(stochastic)
        self.prior_std = _check_positive(name, "prior_std", prior_std)
        self.init_std = _check_positive(name, "init_std", init_std)

        shape = self.weight_shape
        self.weight = nn.Parameter(torch.empty(shape))  # (F_in, T, F_out) or (T, F_in, F_out)
        for attr, param_shape, wanted in (
            ("bias", (num_tasks, out_features), bias),  # (T, F_out)
            ("weight_rho", shape, self.stochastic),  # as weight
            ("bias_rho", (num_tasks, out_features), self.stochastic and bias),  # (T, F_out)
        ):
            self.register_parameter(attr, nn.Parameter(torch.empty(param_shape)) if wanted
                                    else None)
        self.reset_parameters()

    @property
    def weight_shape(self) -> tuple[int, int, int]:
        """The shape of ``weight``: ``(F_in, T, F_out)`` with a shared input, else
        ``(T, F_in, F_out)``."""
        T, i, o = self.num_tasks, self.in_features, self.out_features
        return (i, T, o) if self.shared_input else (T, i, o)

    def task_weight(self) -> Tensor:
        """``weight`` as :math:`(T, F_{in}, F_{out})` in either mode (a view): task
        :math:`t`'s map is ``task_weight()[t]``."""
        return self.weight.transpose(0, 1) if self.shared_input else self.weight

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.shared_input:  # the state dict is task first in either mode
            for name in ("weight", "weight_rho"):
                if prefix + name in destination:
                    destination[prefix + name] = destination[prefix + name].transpose(0, 1)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any) -> None:
        if self.shared_input:  # task first (T, F_in, F_out) -> the stored (F_in, T, F_out)
            for name in ("weight", "weight_rho"):
                value = state_dict.get(prefix + name)
                if isinstance(value, Tensor) and value.dim() == 3:
                    state_dict[prefix + name] = value.transpose(0, 1)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def reset_parameters(self) -> None:
        """Each task like :class:`torch.nn.Linear`; standard deviations set to ``init_std``."""
        bound = 1.0 / math.sqrt(self.in_features)
        rho = inverse_softplus(torch.tensor(self.init_std, dtype=torch.float64)).item()
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)
            if self.weight_rho is not None:
                self.weight_rho.fill_(rho)
            if self.bias_rho is not None:
                self.bias_rho.fill_(rho)

    def _check_input(self, x: Tensor) -> None:
        if self.shared_input:
            ok = x.dim() >= 1 and x.shape[-1] == self.in_features
            expected = f"(..., {self.in_features})"
        else:
            ok = x.dim() >= 2 and tuple(x.shape[-2:]) == (self.num_tasks, self.in_features)
            expected = f"(..., {self.num_tasks}, {self.in_features})"
        if not ok:
            raise ValueError(
                f"{type(self).__name__}: expected input of shape {expected} "
                f"(shared_input={self.shared_input}), got {tuple(x.shape)}"
            )

    def _linear(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if self.shared_input:
            i, T, o = weight.shape
            matrix = weight.reshape(i, T * o)  # (F_in, T*F_out), a view
            flat = x.reshape(-1, i) @ matrix  # (N, T*F_out): one GEMM for all tasks
            out = flat.view(*x.shape[:-1], T, o)  # (*, T, F_out)
            return out if bias is None else out + bias
        if weight.shape[-1] == 1:  # scalar heads: a multiply-add, no batched GEMM
            out = task_dot(x, weight[..., 0]).unsqueeze(-1)  # (*, T, 1)
        else:
            out = torch.einsum("...ti,tio->...to", x, weight)  # (*, T, F_out)
        return out if bias is None else out + bias

    def moments(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and variance of the output, each :math:`(*, T, F_{out})`.

        The variance is 0 when the layer is deterministic.
        """
        self._check_input(x)
        mean = self._linear(x, self.weight, self.bias)  # (*, T, F_out)
        if not self.stochastic:
            return mean, torch.zeros_like(mean)
        bias_var = None if self.bias_rho is None else F.softplus(self.bias_rho).pow(2)  # (T, F_out)
        var = self._linear(x * x, F.softplus(self.weight_rho).pow(2), bias_var)  # (*, T, F_out)
        return mean, var

    def forward(self, x: Tensor, *, sample: bool | None = None) -> Tensor:
        """Apply every task's map; ``sample`` (default: ``self.training``) draws noisy outputs."""
        sample = self.training if sample is None else bool(sample)
        if not (self.stochastic and sample):
            self._check_input(x)
            return self._linear(x, self.weight, self.bias)  # (*, T, F_out)
        mean, var = self.moments(x)
        return _reparameterize(mean, var)

    def kl(self) -> Tensor:
        """Closed-form KL to the prior, summed (0-dim); zero when not stochastic."""
        if not self.stochastic:
            return torch.zeros((), dtype=self.weight.dtype, device=self.weight.device)
        kl = normal_kl(self.weight, F.softplus(self.weight_rho), 0.0, self.prior_std).sum()
        if self.bias is not None:
            kl = kl + normal_kl(self.bias, F.softplus(self.bias_rho), 0.0, self.prior_std).sum()
        return kl

    def extra_repr(self) -> str:
        s = (
            f"num_tasks={self.num_tasks}, in_features={self.in_features}, "
            f"out_features={self.out_features}, shared_input={self.shared_input}, "
            f"bias={self.bias is not None}, stochastic={self.stochastic}"
        )
        if self.stochastic:
            s += f", prior_std={self.prior_std}, init_std={self.init_std}"
        return s
