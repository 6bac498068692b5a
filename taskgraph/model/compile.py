"""``compile``: turn a :class:`Hierarchy` into a :class:`TaskGraphModel`.

Example:
    >>> import torch, taskgraph as tg
    >>> h = tg.load_hierarchy("hierarchies/cell_functions.yaml")
    >>> model = tg.compile(h, in_features=10, rounds=1)
    >>> model.config.coherent, model.config.rounds
    (True, 1)
    >>> lstm_like = torch.nn.Sequential(torch.nn.Linear(10, 12), torch.nn.Tanh())
    >>> tg.compile(h, encoder=lstm_like).projections.in_features
    12
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from taskgraph.errors import ArgumentError
from taskgraph.hierarchy import Hierarchy, load_hierarchy
from taskgraph.model.config import ModelConfig
from taskgraph.model.encoder import infer_out_features
from taskgraph.model.model import TaskGraphModel

__all__ = ["compile"]


def compile(hierarchy: Hierarchy | str | os.PathLike | dict, *, in_features: int | None = None,
            encoder: nn.Module | None = None, encoder_dim: int | None = None,
            coherent: bool | None = None, **overrides: Any) -> TaskGraphModel:
    """Compile a hierarchy into a model.

    Args:
        hierarchy: a :class:`Hierarchy`, or anything :func:`load_hierarchy` reads.
        in_features: input width of the YAML MLP encoder (tabular data).
        encoder: any ``nn.Module`` mapping the input to ``(B, D)`` (CNN, LSTM wrapper,
            pretrained backbone); replaces the MLP.
        encoder_dim: ``D`` for a user encoder whose width cannot be read off its layers.
        coherent: force the coherence constraint on or off (default: the YAML's).
        **overrides: ``task_dim``, ``rounds`` (0 turns message passing off),
            ``directions``, ``message``, ``dropout``, and the mappings ``encoder_spec``
            (MLP keys), ``synapse`` and ``stochastic``; they win over the YAML.

    Returns:
        A :class:`TaskGraphModel` in training mode.

    Raises:
        SchemaError: an unknown or invalid model option (the schema's checks).
        ArgumentError: a bad or missing ``in_features``, ``encoder`` or ``encoder_dim``.
    """
    if not isinstance(hierarchy, Hierarchy):
        hierarchy = load_hierarchy(hierarchy)
    if "encoder_spec" in overrides:
        overrides["encoder"] = overrides.pop("encoder_spec")
    if encoder is not None:
        if not isinstance(encoder, nn.Module):
            raise ArgumentError(f"compile: encoder: expected a torch.nn.Module, got "
                                f"{type(encoder).__name__}")
        if encoder_dim is None:
            encoder_dim = infer_out_features(encoder)
        if encoder_dim is None:
            raise ArgumentError("compile: encoder_dim: cannot tell the output width of the "
                                "encoder; pass encoder_dim=D")
    elif in_features is None:
        raise ArgumentError("compile: in_features: expected N for the YAML MLP encoder "
                            "(or pass an encoder=module), got None")
    for name, value in (("in_features", in_features), ("encoder_dim", encoder_dim)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 1):
            raise ArgumentError(f"compile: {name}: expected a positive integer, got {value!r}")
    config = ModelConfig.resolve(hierarchy, in_features=in_features, encoder_dim=encoder_dim,
                                 custom_encoder=encoder is not None, coherent=coherent,
                                 overrides=overrides)
    return TaskGraphModel(hierarchy, config, encoder=encoder)
