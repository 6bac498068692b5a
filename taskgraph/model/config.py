"""`ModelConfig`: everything ``compile`` decided, small enough to save beside the weights.

The YAML ``model:`` section gives the defaults; ``compile`` keyword arguments override
them and are checked with the same schema tables (one message format for all).

Example:
    >>> from taskgraph.hierarchy import load_hierarchy
    >>> h = load_hierarchy("taskgraph: 1\\nmodel: {task_dim: 8}\\ntasks:\\n  a: {type: binary}\\n")
    >>> cfg = ModelConfig.resolve(h, in_features=5, overrides={"rounds": 1})
    >>> cfg.task_dim, cfg.rounds, cfg.in_features
    (8, 1, 5)
    >>> ModelConfig.from_dict(cfg.to_dict()) == cfg
    True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from taskgraph.errors import SchemaError
from taskgraph.hierarchy import EncoderSpec, Hierarchy, StochasticSpec, SynapseSpec
from taskgraph.hierarchy import schema
from taskgraph.vocabulary import suggest

__all__ = ["ModelConfig"]

_SECTIONS = {"encoder": (EncoderSpec, schema.ENCODER), "synapse": (SynapseSpec, schema.SYNAPSE),
             "stochastic": (StochasticSpec, schema.STOCHASTIC)}
_PLAIN = ("task_dim", "projection_rank", "rounds", "directions", "message", "send", "dropout",
          "coherent")

#: ``projection_rank: auto`` keeps full per-task projections up to this many weights.
_AUTO_FULL_WEIGHTS = 1 << 24


@dataclass(frozen=True)
class ModelConfig:
    """The resolved settings of a compiled model (see the README's schema reference)."""

    in_features: int | None = None
    encoder_dim: int | None = None
    custom_encoder: bool = False
    task_dim: int = 64
    projection_rank: int | str = "auto"
    rounds: int = 2
    directions: tuple[str, ...] = ("down", "up")
    message: str = "sum"
    send: str = "embedding"
    dropout: float = 0.0
    coherent: bool = False
    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    synapse: SynapseSpec = field(default_factory=SynapseSpec)
    stochastic: StochasticSpec = field(default_factory=StochasticSpec)
    #: Where message passing normalizes: ``"source"`` (what is sent; a round without
    #: messages is the identity) or ``"residual"`` (the round's output; models saved
    #: before this field existed). Not a YAML key: it records how a model was built.
    message_norm: str = "source"

    def rank(self, num_tasks: int, encoder_dim: int) -> int | None:
        """The resolved :attr:`projection_rank`: ``None`` for full projections, else r.

        Example:
            >>> ModelConfig(task_dim=16).rank(100_000, 512)
            16
            >>> ModelConfig(task_dim=16).rank(1_000, 512) is None
            True
        """
        r = self.projection_rank
        if r == "full":
            return None
        if r == "auto":
            F = self.task_dim
            if num_tasks * encoder_dim * F <= _AUTO_FULL_WEIGHTS:
                return None
            return min(encoder_dim, max(F, _AUTO_FULL_WEIGHTS // (num_tasks * F)))
        return int(r)

    @property
    def message_passing(self) -> bool:
        return self.rounds > 0 and len(self.directions) > 0

    @classmethod
    def resolve(cls, hierarchy: Hierarchy, *, in_features: int | None = None,
                encoder_dim: int | None = None, custom_encoder: bool = False,
                coherent: bool | None = None,
                overrides: Mapping[str, Any] | None = None) -> "ModelConfig":
        """YAML defaults of ``hierarchy`` with ``overrides`` applied and checked.

        Raises:
            SchemaError: an unknown or invalid override (named, with a suggestion).
        """
        spec = hierarchy.model
        values: dict[str, Any] = {k: getattr(spec, k) for k in _PLAIN}
        values.update(encoder=spec.encoder, synapse=spec.synapse, stochastic=spec.stochastic)
        problems: list[str] = []
        for key, value in dict(overrides or {}).items():
            if key in _SECTIONS:
                spec_cls, table = _SECTIONS[key]
                value = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
                if not isinstance(value, Mapping):
                    problems.append(f"{key}: expected a mapping, got {schema.describe(value)}")
                    continue
                current = dataclasses.asdict(values[key])
                for sub, v in value.items():
                    message = (f"unknown key{suggest(sub, table)}" if sub not in table
                               else table[sub].check(list(v) if isinstance(v, tuple) else v))
                    if message:
                        problems.append(f"{key}.{sub}: {message}")
                    else:
                        current[sub] = tuple(v) if isinstance(v, list) else v
                values[key] = spec_cls(**current)
            elif key in _PLAIN:
                check_value = list(value) if isinstance(value, tuple) else value
                message = (None if key == "rounds" and isinstance(value, int)
                           and not isinstance(value, bool) and value >= 0
                           else schema.MODEL[key].check(check_value))
                if message:
                    problems.append(f"{key}: {message}")
                else:
                    values[key] = tuple(value) if key == "directions" else value
            else:
                options = list(_PLAIN) + [k if k != "encoder" else "encoder_spec"
                                          for k in _SECTIONS]
                problems.append(f"unknown compile option {key!r}{suggest(key, options)}")
        if coherent is not None:
            values["coherent"] = bool(coherent)
        if problems:
            raise SchemaError("compile: " + "; ".join(problems))
        return cls(in_features=in_features, encoder_dim=encoder_dim,
                   custom_encoder=custom_encoder, **values)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready data (tuples as lists)."""
        def plain(v: Any) -> Any:
            return list(v) if isinstance(v, tuple) else v
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = ({k: plain(v) for k, v in dataclasses.asdict(value).items()}
                           if dataclasses.is_dataclass(value) else plain(value))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        """Inverse of :meth:`to_dict`."""
        kw = dict(data)
        for key, (spec_cls, _) in _SECTIONS.items():
            if key in kw:
                kw[key] = spec_cls(**{k: tuple(v) if isinstance(v, list) else v
                                      for k, v in kw[key].items()})
        if "directions" in kw:
            kw["directions"] = tuple(kw["directions"])
        kw.setdefault("message_norm", "residual")  # saved before message_norm existed
        return cls(**kw)
