"""Encoders: the MLP declared in YAML, and :class:`UserEncoder`, the thin adapter that
gives any user module the same face. Every encoder of a model takes ``sample=``, has
``kl()``, says whether it is ``stochastic``, and checks what it returns.

Example:
    >>> import torch
    >>> from taskgraph.hierarchy import EncoderSpec
    >>> enc = MLPEncoder(8, EncoderSpec(hidden=(16, 4)))
    >>> enc(torch.randn(3, 8)).shape
    torch.Size([3, 4])
    >>> user = UserEncoder(torch.nn.Linear(8, 5), 5)  # a module that takes no sample=
    >>> user(torch.randn(3, 8), sample=True).shape, user.kl().item()
    (torch.Size([3, 5]), 0.0)
    >>> infer_out_features(torch.nn.Sequential(torch.nn.Linear(8, 5), torch.nn.ReLU()))
    5
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from taskgraph.errors import ArgumentError, DataError
from taskgraph.hierarchy import EncoderSpec
from taskgraph.nn.stochastic_linear import StochasticLinear

__all__ = ["MLPEncoder", "UserEncoder", "infer_out_features"]

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
                 prior_std: float = 1.0, init_std: float = 1e-3) -> None:
        super().__init__()
        if not isinstance(in_features, int) or isinstance(in_features, bool) or in_features < 1:
            raise ArgumentError(f"MLPEncoder: in_features: expected a positive integer, got "
                                f"{in_features!r}")
        self.in_features = in_features
        self.stochastic = stochastic
        self.out_features = spec.hidden[-1] if spec.hidden else in_features
        layers: list[nn.Module] = []
        width = in_features
        for hidden in spec.hidden:
            layers.append(StochasticLinear(width, hidden, prior_std=prior_std,
                                           init_std=init_std) if stochastic
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

    def forward(self, x: Any, *, sample: bool | None = None) -> Tensor:
        """``(B, in_features)`` -> ``(B, out_features)``.

        Raises:
            DataError: ``x`` is not a ``(B, in_features)`` tensor.
        """
        return self._run(self.layers, self._checked(x), sample)

    def dropout_split(self) -> tuple[Callable[[Any], Tensor], Callable[[Tensor], Tensor]] | None:
        """``(head, tail)`` with ``tail(head(x)) == self(x, sample=False)`` and no dropout
        in ``head``, split at the first dropout module with ``p > 0``; ``None`` when
        nothing comes before it. MC dropout runs ``head`` once and ``tail`` per draw."""
        i = _first_dropout(self.layers)
        if not i:
            return None
        head, tail = self.layers[:i], self.layers[i:]
        return (lambda x: self._run(head, self._checked(x), False),
                lambda u: self._run(tail, u, False))

    @staticmethod
    def _run(layers: Any, x: Tensor, sample: bool | None) -> Tensor:
        for layer in layers:
            x = layer(x, sample=sample) if isinstance(layer, StochasticLinear) else layer(x)
        return x

    def _checked(self, x: Any) -> Tensor:
        want = self.in_features
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != want:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise DataError(f"model input: expected a (B, in_features={want}) tensor, "
                            f"got {got}" + (" (one example? use x[None] or x.unsqueeze(0))"
                                            if got == (want,) else ""))
        return x

    def kl(self) -> Tensor:
        kls = [m.kl() for m in self.layers if isinstance(m, StochasticLinear)]
        return torch.stack(kls).sum() if kls else torch.zeros(())

    def __repr__(self) -> str:
        widths = [m.out_features for m in self.layers if hasattr(m, "out_features")]
        return (f"MLPEncoder({self.in_features}, hidden={widths}, "
                f"stochastic={self.stochastic})")


class UserEncoder(nn.Module):
    """A user's encoder module with the model's encoder interface.

    It calls ``module(x)``, takes the first element of a tuple or list (an LSTM's
    ``(output, state)``), and checks the result is ``(B, out_features)``. ``sample`` is
    accepted and ignored, ``kl()`` is 0: the module is deterministic as far as the
    model's ELBO knows.

    Args:
        module (nn.Module): the user's encoder; saved weights sit under ``module.``
            (those saved before the adapter existed, without it, load too).
        out_features (int): ``D``, the width the model was compiled with.

    Shapes:
        input: whatever ``module`` takes; output ``(B, out_features)``.
    """

    stochastic = False

    def __init__(self, module: nn.Module, out_features: int) -> None:
        super().__init__()
        self.module = module
        self.out_features = out_features

    def forward(self, x: Any, *, sample: bool | None = None) -> Tensor:
        """Raises DataError when the module returns something other than ``(B, D)``."""
        return self._checked(self.module(x))

    def dropout_split(self) -> tuple[Callable[[Any], Any], Callable[[Any], Tensor]] | None:
        """For an ``nn.Sequential`` module, ``(head, tail)`` split before the first
        child that holds a dropout module with ``p > 0`` (see
        :meth:`MLPEncoder.dropout_split`); ``None`` for any other module, or when nothing
        comes before that child."""
        if not isinstance(self.module, nn.Sequential):
            return None
        i = _first_dropout(self.module)
        if not i:
            return None
        head, tail = self.module[:i], self.module[i:]
        return head, lambda u: self._checked(tail(u))

    def _checked(self, z: Any) -> Tensor:
        if isinstance(z, (tuple, list)):  # e.g. an LSTM's (output, state): take the first
            z = z[0]
        want = self.out_features
        if not isinstance(z, Tensor) or z.dim() != 2 or z.shape[1] != want:
            got = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise DataError(f"encoder output: expected (B, {want}) (the encoder_dim the model "
                            f"was compiled with), got {got}")
        return z  # (B, D)

    def kl(self) -> Tensor:
        return torch.zeros(())

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any,
                              **kwargs: Any) -> None:
        # weights saved before this adapter existed sit at ``encoder.*``, not
        # ``encoder.module.*``: move them under ``module.`` (the module's own loading
        # runs after this, on the moved keys)
        inner = prefix + "module."
        for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(inner)]:
            state_dict[inner + key[len(prefix):]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"out_features={self.out_features}"


def _first_dropout(layers: Any) -> int | None:
    """Index of the first of ``layers`` that is or holds a dropout module with ``p > 0``."""
    from taskgraph.model.predict import DROPOUT_MODULES

    for i, layer in enumerate(layers):
        if any(isinstance(m, DROPOUT_MODULES) and m.p > 0 for m in layer.modules()):
            return i
    return None


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
