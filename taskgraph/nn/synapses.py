"""A bank of stochastic synapses, one per directed edge of the task graph."""

from __future__ import annotations

import difflib
from numbers import Real
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from taskgraph.vocabulary import SYNAPSE_KINDS

__all__ = ["EdgeSynapses", "SYNAPSE_KINDS", "inverse_softplus", "normal_kl"]



def inverse_softplus(x: Tensor) -> Tensor:
    r"""The inverse of :func:`torch.nn.functional.softplus`, :math:`\log(e^x - 1)`, for ``x > 0``.

    Computed as :math:`x + \log(1 - e^{-x})`, which is stable for large and small ``x``.

    Example:
        >>> import torch
        >>> x = torch.tensor([1e-3, 0.1, 1.0, 30.0])
        >>> torch.allclose(torch.nn.functional.softplus(inverse_softplus(x)), x)
        True
    """
    return x + torch.log(-torch.expm1(-x))


def normal_kl(
    mu: Tensor, sigma: Tensor, prior_mu: Tensor | float, prior_sigma: Tensor | float
) -> Tensor:
    r"""Elementwise KL divergence between gaussians,
    :math:`\mathrm{KL}(\mathcal{N}(\mu, \sigma^2) \,\|\, \mathcal{N}(\mu_0, \sigma_0^2))`.

    .. math::
        \log\frac{\sigma_0}{\sigma} + \frac{\sigma^2 + (\mu - \mu_0)^2}{2\sigma_0^2} - \frac{1}{2}

    Example:
        >>> import torch
        >>> normal_kl(torch.tensor(0.0), torch.tensor(1.0), 0.0, 1.0)
        tensor(0.)
    """
    prior_mu = torch.as_tensor(prior_mu, dtype=mu.dtype, device=mu.device)
    prior_sigma = torch.as_tensor(prior_sigma, dtype=mu.dtype, device=mu.device)
    return (
        torch.log(prior_sigma) - torch.log(sigma)
        + (sigma.pow(2) + (mu - prior_mu).pow(2)) / (2 * prior_sigma.pow(2))
        - 0.5
    )


class EdgeSynapses(nn.Module):
    r"""A bank of :math:`E` stochastic synapses, one per directed edge, each of its own kind.

    Every edge :math:`s \to t` of a task hierarchy carries a weight :math:`w_{st}` that is a
    random variable with a learned distribution :math:`q(w_{st})`. Three kinds share one
    vectorized formula, so a bank of thousands of mixed edges costs a few tensor operations:

    .. math::
        w = a \cdot r + \sigma \cdot \epsilon, \qquad \epsilon \sim \mathcal{N}(0, 1)

    * ``"gaussian"``: :math:`r = 1`, learned mean :math:`a = \mu` and
      :math:`\sigma = \mathrm{softplus}(\rho)` (reparameterization trick); KL to the prior
      :math:`\mathcal{N}(\mu_0, \sigma_0^2)`.
    * ``"bernoulli"``: a synapse with a release probability, as in biology: :math:`\sigma = 0`,
      learned amplitude :math:`a` and release :math:`r \sim \mathrm{Bernoulli}(p)`, with
      :math:`p = \mathrm{sigmoid}(\ell)` learned through its logit :math:`\ell`. The forward
      pass uses a hard 0/1 release; gradients flow through the binary-concrete relaxation
      :math:`\mathrm{sigmoid}((\ell + \log u - \log(1-u)) / \tau)` (straight-through).
      :math:`\mathbb{E}[w] = a p`; KL of :math:`\mathrm{Bernoulli}(p)` to
      :math:`\mathrm{Bernoulli}(p_0)` (the amplitude is a point estimate).
    * ``"fixed"``: a deterministic learned weight :math:`a` (:math:`r = 1`, :math:`\sigma = 0`),
      no noise, zero KL.

    In training mode each example of a batch gets its own sample; in evaluation mode the
    expected weight :math:`\mathbb{E}[w]` is returned unless samples are asked for.

    Args:
        kinds (Sequence[str]): the kind of each edge, one of ``"gaussian"``, ``"bernoulli"``,
            ``"fixed"``; its length is the number of edges :math:`E` (may be 0).
        mean (float or Sequence[float], optional): initial :math:`\mu` (gaussian), amplitude
            :math:`a` (bernoulli) or weight (fixed); one value, or one per edge.
            (default: :obj:`1.0`)
        std (float or Sequence[float], optional): initial standard deviation of gaussian
            edges, :math:`> 0`; ignored by the other kinds. (default: :obj:`0.1`)
        p (float or Sequence[float], optional): initial release probability of bernoulli
            edges, in :math:`(0, 1]`. :math:`p = 1` is stored as :math:`1 - 10^{-6}`.
            (default: :obj:`0.9`)
        prior_mean (float or Sequence[float], optional): mean :math:`\mu_0` of the gaussian
            prior; :obj:`None` centres the prior on the initial ``mean`` of each edge, so
            the KL only penalizes moving away from the declared synapse. (default: :obj:`None`)
        prior_std (float or Sequence[float], optional): standard deviation :math:`\sigma_0`
            of the gaussian prior, :math:`> 0`. (default: :obj:`1.0`)
        prior_p (float or Sequence[float], optional): release probability :math:`p_0` of
            the bernoulli prior, in :math:`(0, 1)`. (default: :obj:`0.5`)
        learn_p (bool, optional): if :obj:`False`, release probabilities stay at their
            initial value (the logit is a buffer). (default: :obj:`True`)
        temperature (float, optional): temperature :math:`\tau > 0` of the relaxation used
            for the bernoulli gradients. (default: :obj:`0.5`)

    Shapes:
        - **input:** an optional batch size :math:`B`
        - **output:** weights :math:`(B, E)`, or :math:`(E)` when no batch size is given

    Example:
        >>> import torch
        >>> from taskgraph.nn.synapses import EdgeSynapses
        >>> _ = torch.manual_seed(0)
        >>> syn = EdgeSynapses(["gaussian", "bernoulli", "fixed"], mean=1.0, std=0.1, p=0.5)
        >>> syn
        EdgeSynapses(num_edges=3, gaussian=1, bernoulli=1, fixed=1, learn_p=True, temperature=0.5)
        >>> syn(batch_size=4).shape  # training mode: one sample per example
        torch.Size([4, 3])
        >>> [round(w, 4) for w in syn.eval()(batch_size=2)[0].tolist()]  # eval: E[w]
        [1.0, 0.5, 1.0]
        >>> syn.kl().item() > 0
        True
    """

    P_EPS: float = 1e-6

    def __init__(
        self,
        kinds: Sequence[str],
        *,
        mean: float | Sequence[float] = 1.0,
        std: float | Sequence[float] = 0.1,
        p: float | Sequence[float] = 0.9,
        prior_mean: float | Sequence[float] | None = None,
        prior_std: float | Sequence[float] = 1.0,
        prior_p: float | Sequence[float] = 0.5,
        learn_p: bool = True,
        temperature: float = 0.5,
    ) -> None:
        super().__init__()
        self.kinds: tuple[str, ...] = _check_kinds(kinds)
        num_edges = len(self.kinds)
        if isinstance(temperature, bool) or not isinstance(temperature, Real) or not temperature > 0:
            raise _expected("temperature", "a float > 0", repr(temperature))
        self.learn_p = bool(learn_p)
        self.temperature = float(temperature)

        is_gaussian = torch.tensor([k == "gaussian" for k in self.kinds], dtype=torch.bool)  # (E,)
        is_bernoulli = torch.tensor([k == "bernoulli" for k in self.kinds],
                                    dtype=torch.bool)  # (E,)
        self.register_buffer("is_gaussian", is_gaussian, persistent=False)  # (E,)
        self.register_buffer("is_bernoulli", is_bernoulli, persistent=False)  # (E,)
        self._has_gaussian = bool(is_gaussian.any())
        self._has_bernoulli = bool(is_bernoulli.any())

        mean_t = _per_edge("mean", mean, num_edges)
        std_t = _per_edge("std", std, num_edges)
        p_t = _per_edge("p", p, num_edges)
        if prior_mean is None:
            prior_mean_t = mean_t.clone()
        else:
            prior_mean_t = _per_edge("prior_mean", prior_mean, num_edges)
        prior_std_t = _per_edge("prior_std", prior_std, num_edges)
        prior_p_t = _per_edge("prior_p", prior_p, num_edges)
        _check_range("std", std_t, std_t >= 0, "a value >= 0")
        _check_range("std", std_t, ~is_gaussian | (std_t > 0), "a value > 0 on gaussian edges")
        _check_range("p", p_t, (p_t > 0) & (p_t <= 1), "a probability in (0, 1]")
        _check_range("prior_std", prior_std_t, prior_std_t > 0, "a value > 0")
        _check_range(
            "prior_p", prior_p_t, (prior_p_t > 0) & (prior_p_t < 1), "a probability in (0, 1)"
        )

        self.register_buffer("init_mean", mean_t, persistent=False)  # (E,)
        self.register_buffer("init_std", std_t, persistent=False)  # (E,)
        self.register_buffer("init_p", p_t, persistent=False)  # (E,)
        self.register_buffer("prior_mean", prior_mean_t, persistent=False)  # (E,)
        self.register_buffer("prior_std", prior_std_t, persistent=False)  # (E,)
        self.register_buffer("prior_p", prior_p_t, persistent=False)  # (E,)

        self.mu = nn.Parameter(torch.empty(num_edges))  # (E,) mean / amplitude / weight
        self.rho = nn.Parameter(torch.empty(num_edges))  # (E,) std = softplus(rho)
        if self.learn_p:
            self.p_logit = nn.Parameter(torch.empty(num_edges))  # (E,)
        else:
            self.register_buffer("p_logit", torch.empty(num_edges))  # (E,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset every synapse to its initial mean, std and release probability."""
        with torch.no_grad():
            self.mu.copy_(self.init_mean)
            self.rho.copy_(inverse_softplus(self.init_std.clamp_min(1e-8)))
            p = self.init_p.clamp(self.P_EPS, 1.0 - self.P_EPS)
            self.p_logit.copy_(torch.log(p) - torch.log1p(-p))

    @property
    def num_edges(self) -> int:
        """The number of synapses :math:`E`."""
        return len(self.kinds)

    def release_probability(self) -> Tensor:
        """Release probability :math:`p` per edge, 1 for non-bernoulli edges. Shape :math:`(E)`."""
        return torch.where(self.is_bernoulli, torch.sigmoid(self.p_logit), 1.0)  # (E,)

    def mean_weight(self) -> Tensor:
        r"""Expected weight :math:`\mathbb{E}[w]` per edge (:math:`a p` for bernoulli).

        Shape :math:`(E)`.
        """
        return self.mu * self.release_probability()  # (E,)

    def std_weight(self) -> Tensor:
        r"""Standard deviation of the weight per edge. Shape :math:`(E)`.

        Gaussian: :math:`\mathrm{softplus}(\rho)`; bernoulli: :math:`|a|\sqrt{p(1-p)}`; fixed: 0.
        """
        gauss = F.softplus(self.rho)  # (E,)
        # p (1 - p) = sigmoid(l) sigmoid(-l), accurate for p close to 1
        bern_var = torch.sigmoid(self.p_logit) * torch.sigmoid(-self.p_logit)  # (E,)
        bern = self.mu.abs() * torch.sqrt(bern_var)  # (E,)
        return torch.where(self.is_gaussian, gauss, torch.where(self.is_bernoulli, bern, 0.0))

    def forward(self, batch_size: int | None = None, *, sample: bool | None = None) -> Tensor:
        """Draw the synapse weights.

        Args:
            batch_size: number of examples :math:`B`; each gets its own sample. :obj:`None`
                returns a single weight vector of shape :math:`(E)`.
            sample: draw random weights; :obj:`None` means ``self.training``. When
                :obj:`False`, the expected weights are returned (deterministic).
        """
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0
        ):
            raise _expected("batch_size", "None or an int >= 0", repr(batch_size))
        sample = self.training if sample is None else bool(sample)
        shape = (self.num_edges,) if batch_size is None else (batch_size, self.num_edges)
        if not sample:
            return self.mean_weight().expand(shape)  # (B, E) or (E,)

        weight = self.mu.expand(shape)  # (B, E)
        if self._has_bernoulli:
            weight = weight * self._release(shape)  # (B, E)
        if self._has_gaussian:
            sigma = torch.where(self.is_gaussian, F.softplus(self.rho), 0.0)  # (E,)
            eps = torch.randn(shape, dtype=self.mu.dtype, device=self.mu.device)  # (B, E)
            weight = weight + sigma * eps
        return weight

    def _release(self, shape: tuple[int, ...]) -> Tensor:
        """Straight-through release sample (B, E): hard 0/1 forward, relaxed gradient.

        Non-bernoulli edges always release (1).
        """
        tiny = torch.finfo(self.p_logit.dtype).eps
        u = torch.rand(shape, dtype=self.p_logit.dtype, device=self.p_logit.device)
        u = u.clamp(tiny, 1.0 - tiny)  # (B, E)
        z = self.p_logit + torch.log(u) - torch.log1p(-u)  # (B, E) logistic noise around the logit
        soft = torch.sigmoid(z / self.temperature)  # (B, E)
        hard = (z > 0).to(soft.dtype)  # (B, E), P(hard = 1) = sigmoid(logit) = p
        release = hard + (soft - soft.detach())  # exactly 0/1 forward, relaxed gradient
        return torch.where(self.is_bernoulli, release, 1.0)

    def kl(self) -> Tensor:
        """Closed-form KL divergence of the posterior to the prior, summed over edges (0-dim)."""
        gauss = normal_kl(self.mu, F.softplus(self.rho), self.prior_mean, self.prior_std)  # (E,)
        p = torch.sigmoid(self.p_logit)  # (E,)
        q = self.prior_p  # (E,)
        bern = p * (F.logsigmoid(self.p_logit) - torch.log(q)) + (1 - p) * (
            F.logsigmoid(-self.p_logit) - torch.log1p(-q)
        )  # (E,)
        kl = torch.where(self.is_gaussian, gauss, torch.where(self.is_bernoulli, bern, 0.0))
        return kl.sum()

    def table(self) -> list[dict]:
        """One dict per edge: ``{"kind", "mean", "std", "p"}`` with Python floats."""
        with torch.no_grad():
            mean = self.mean_weight().cpu().tolist()
            std = self.std_weight().cpu().tolist()
            p = self.release_probability().cpu().tolist()
        return [
            {"kind": kind, "mean": m, "std": s, "p": q}
            for kind, m, s, q in zip(self.kinds, mean, std, p)
        ]

    def extra_repr(self) -> str:
        counts = ", ".join(f"{k}={self.kinds.count(k)}" for k in SYNAPSE_KINDS)
        return (
            f"num_edges={self.num_edges}, {counts}, "
            f"learn_p={self.learn_p}, temperature={self.temperature}"
        )


def _expected(name: str, expected: str, received: str) -> ValueError:
    return ValueError(f"EdgeSynapses: expected `{name}` to be {expected}, got {received}")


def _check_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    if isinstance(kinds, str):
        raise _expected("kinds", "a sequence of kind names, one per edge", f"the string {kinds!r}")
    try:
        kinds = tuple(kinds)
    except TypeError:
        raise _expected("kinds", "a sequence of kind names, one per edge", repr(kinds)) from None
    for i, kind in enumerate(kinds):
        if kind not in SYNAPSE_KINDS:
            hint = difflib.get_close_matches(str(kind), SYNAPSE_KINDS, n=1)
            did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ValueError(
                f"EdgeSynapses: unknown synapse kind {kind!r} at index {i}{did_you_mean}; "
                f"expected one of {', '.join(map(repr, SYNAPSE_KINDS))}"
            )
    return kinds


def _per_edge(name: str, value: float | Sequence[float], num_edges: int) -> Tensor:
    """One value per edge from a scalar or a sequence of length ``num_edges``. Shape (E,)."""
    expected = f"a float or a sequence of {num_edges} floats (one per edge)"
    if isinstance(value, bool):
        raise _expected(name, expected, repr(value))
    try:
        t = torch.as_tensor(value, dtype=torch.get_default_dtype()).detach().cpu()
    except (TypeError, ValueError, RuntimeError):
        raise _expected(name, expected, repr(value)) from None
    if t.dim() == 0:
        t = t.expand(num_edges)
    elif t.dim() != 1 or t.numel() != num_edges:
        raise _expected(name, expected, f"shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise _expected(name, "finite", repr(value))
    return t.clone()


def _check_range(name: str, values: Tensor, ok: Tensor, expected: str) -> None:
    bad = (~ok).nonzero().flatten()
    if bad.numel() > 0:
        i = int(bad[0])
        raise _expected(name, expected, f"{values[i].item():g} at edge {i}")

