"""The MLP encoder declared in YAML, and finding the output width of a user's encoder.

Example:
    >>> import torch
    >>> from taskgraph.hierarchy import EncoderSpec
    >>> enc = MLPEncoder(8, EncoderSpec(hidden=(16, 4)))
    >>> enc(torch.randn(3, 8)).shape
    torch.Size([3, 4])
    >>> infer_out_features(torch.nn.Sequential(torch.nn.Linear(8, 5), torch.nn.ReLU()))
    5
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from taskgraph.hierarchy import EncoderSpec
from taskgraph.nn.stochastic_linear import StochasticLinear

__all__ = ["MLPEncoder", "infer_out_features"]

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}


class MLPEncoder(nn.Module):
    r"""A multi-layer perceptron for tabular inputs:
    :math:`z = \phi(W_L \cdots \phi(W_1 x))`, each hidden layer followed by the activation,
    optional batch norm and dropout.

    Args:
        in_features (int): input width.
        spec (EncoderSpec): ``hidden`` widths, ``dropout``, ``activation``, ``batch_norm``.
        stochastic (bool, optional): make every layer a :class:`StochasticLinear`
            (default: ``False``).
        prior_std (float, optional): prior of the stochastic layers (default: ``1.0``).

    Shapes:
        input ``(B, in_features)``, output ``(B, out_features)`` with ``out_features``
        the last hidden width (``in_features`` when ``hidden`` is empty).
    """

    def __init__(self, in_features: int, spec: EncoderSpec, *, stochastic: bool = False,
                 prior_std: float = 1.0) -> None:
        super().__init__()
        if not isinstance(in_features, int) or in_features < 1:
            raise ValueError(f"in_features: expected a positive integer, got {in_features!r}")
        self.in_features = in_features
        self.stochastic = stochastic
        self.out_features = spec.hidden[-1] if spec.hidden else in_features
        layers: list[nn.Module] = []
        width = in_features
        for hidden in spec.hidden:
            layers.append(StochasticLinear(width, hidden, prior_std=prior_std) if stochastic
                          else nn.Linear(width, hidden))
            layers.append(_ACTIVATIONS[spec.activation]())
            if spec.batch_norm:
                layers.append(nn.BatchNorm1d(hidden))
            if spec.dropout > 0:
                layers.append(nn.Dropout(spec.dropout))
            width = hidden
        self.layers = nn.ModuleList(layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in self.layers:
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()

    def forward(self, x: Tensor, *, sample: bool | None = None) -> Tensor:
        for layer in self.layers:
            x = layer(x, sample=sample) if isinstance(layer, StochasticLinear) else layer(x)
        return x  # (B, out_features)

    def kl(self) -> Tensor:
        kls = [m.kl() for m in self.layers if isinstance(m, StochasticLinear)]
        return torch.stack(kls).sum() if kls else torch.zeros(())

    def __repr__(self) -> str:
        widths = [m.out_features for m in self.layers if hasattr(m, "out_features")]
        return (f"MLPEncoder({self.in_features}, hidden={widths}, "
                f"stochastic={self.stochastic})")


def infer_out_features(module: nn.Module) -> int | None:
    """The output width of ``module`` when its structure tells it, else ``None``.

    Looks for ``out_features`` / ``output_dim`` / ``hidden_size`` on the module, then on
    the last sub-module that has one (``nn.Sequential`` of ``Linear`` layers and the like).
    """
    for attr in ("out_features", "output_dim", "out_channels", "hidden_size", "embed_dim"):
        value = getattr(module, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    children = list(module.children())
    for child in reversed(children):
        found = infer_out_features(child)
        if found is not None:
            return found
    return None
