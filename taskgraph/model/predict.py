r"""Monte-Carlo prediction with uncertainty, samples folded into the batch.

The deterministic prefix of the model (encoder, projections, unless they are
stochastic) runs once; its output is repeated ``k`` times along the batch and the
stochastic rest (synapses, message passing, stochastic heads) runs on ``k * B`` rows per
chunk. Per task the K samples give

.. math::
    \bar p = \tfrac1K \sum_k p_k, \quad
    \mathbb{H}[\bar p], \quad
    \mathrm{MI} = \mathbb{H}[\bar p] - \tfrac1K \sum_k \mathbb{H}[p_k]

(predictive entropy and mutual information, the epistemic part), the std of :math:`p_k`,
and for regression the mean and variance of the sampled values, in the targets' units:
the heads' standardized outputs :math:`f_k` become
:math:`\mathrm{loc} + \mathrm{scale} \cdot \bar f` and variance
:math:`\mathrm{scale}^2 \operatorname{Var}_k f_k` (the model's ``target_loc`` /
``target_scale``).

Example:
    >>> import torch, taskgraph as tg
    >>> model = tg.compile("hierarchies/animals.yaml", in_features=6, task_dim=4)
    >>> pred = model.predict(torch.randn(5, 6), samples=8)
    >>> pred["diet"].probs.shape, pred["diet"].mutual_info.shape, pred["species"].label.shape
    (torch.Size([5, 3]), torch.Size([5]), torch.Size([5]))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import Tensor

from taskgraph.errors import DataError
from taskgraph.model.decode import decode_classes
from taskgraph.model.encoder import MLPEncoder

__all__ = ["predict", "Prediction", "TaskPrediction"]

#: rows * (tasks + directions * edges) * task_dim per chunk (~8 MB of float32): the
#: per-edge message tensors are memory-bound, so small chunks run fastest on a CPU
_ELEMENT_BUDGET = 1 << 21


@dataclass(frozen=True)
class TaskPrediction:
    """One task's prediction.

    ``probs``: binary (B,), multiclass / multilabel (B, K); ``None`` for regression.
    ``value``: regression mean (B,) or (B, k), in the targets' units; ``variance`` its MC
    variance (``scale**2`` times that of the standardized head output).
    ``std``: std of the sampled probabilities (same shape as ``probs``).
    ``entropy`` / ``mutual_info``: predictive entropy and mutual information (nats):
    (B,) for binary and multiclass, (B, K) per label for multilabel.
    ``label``: binary 0/1, multiclass class index (consistent with ``class_parents``;
    −1 where no class fits the decoded parent class), multilabel (B, K) 0/1. ``classes``: class names, if any.
    """

    kind: str
    probs: Tensor | None = None
    std: Tensor | None = None
    entropy: Tensor | None = None
    mutual_info: Tensor | None = None
    value: Tensor | None = None
    variance: Tensor | None = None
    label: Tensor | None = None
    classes: tuple[str, ...] | None = None


class Prediction(Mapping):
    """Task name -> :class:`TaskPrediction`, backed by per-group blocks (``.blocks``)."""

    def __init__(self, model: Any, blocks: list[dict[str, Tensor]], samples: int) -> None:
        self.layout = model.layout
        self.hierarchy = model.hierarchy
        self.blocks = blocks
        self.samples = samples

    def __getitem__(self, name: str) -> TaskPrediction:
        if name not in self.layout.where:
            raise KeyError(f"no task {name!r} in this prediction")
        g, j = self.layout.where[name]
        group, block = self.layout.groups[g], self.blocks[g]
        kind = group.kind
        if kind == "regression":
            value, var = block["mean"][:, j], block["var"][:, j]
            if group.width == 1:
                value, var = value[:, 0], var[:, 0]
            return TaskPrediction(kind, value=value, variance=var)
        pick = {k: v[:, j] for k, v in block.items()}
        return TaskPrediction(kind, probs=pick["mean"], std=pick["std"],
                              entropy=pick["entropy"], mutual_info=pick["mi"],
                              label=pick["label"], classes=self.hierarchy[name].classes)

    def __iter__(self) -> Iterator[str]:
        return iter(self.layout.names)

    def __len__(self) -> int:
        return len(self.layout.names)

    def __repr__(self) -> str:
        return f"Prediction({len(self)} tasks, samples={self.samples})"


def _entropy_bernoulli(p: Tensor) -> Tensor:
    p = p.clamp(1e-7, 1 - 1e-7)
    return -(p * p.log() + (1 - p) * (1 - p).log())


def _entropy_categorical(p: Tensor) -> Tensor:
    return -(p * p.clamp_min(1e-12).log()).sum(-1)


def _probabilities(kind: str, block: Tensor) -> Tensor:
    if kind == "multiclass":
        return block.softmax(-1)
    if kind in ("binary", "multilabel"):
        return block.sigmoid()
    return block


class _Accumulator:
    """Running sums over samples for one group (chunk-friendly: everything is linear)."""

    def __init__(self, kind: str) -> None:
        self.kind, self.n = kind, 0
        self.s = self.s2 = self.ent = None

    def add(self, values: Tensor) -> None:  # (k, B, ...)
        p = _probabilities(self.kind, values.float())
        ent = (None if self.kind == "regression" else
               _entropy_categorical(p) if self.kind == "multiclass" else _entropy_bernoulli(p))
        parts = (p.sum(0), (p * p).sum(0), ent.sum(0) if ent is not None else None)
        if self.s is None:
            self.s, self.s2, self.ent = parts
        else:
            self.s, self.s2 = self.s + parts[0], self.s2 + parts[1]
            self.ent = self.ent + parts[2] if parts[2] is not None else None
        self.n += values.shape[0]

    def result(self) -> dict[str, Tensor]:
        mean = self.s / self.n
        var = (self.s2 / self.n - mean * mean).clamp_min(0)
        if self.kind == "regression":
            return {"mean": mean, "var": var}
        entropy = (_entropy_categorical(mean) if self.kind == "multiclass"
                   else _entropy_bernoulli(mean))
        label = mean.argmax(-1) if self.kind == "multiclass" else (mean > 0.5).long()
        return {"mean": mean, "std": var.sqrt(), "entropy": entropy,
                "mi": (entropy - self.ent / self.n).clamp_min(0), "label": label}


def predict(model: Any, x: Any, *, samples: int = 0, chunk_size: int | None = None) -> Prediction:
    """Predict with ``samples`` Monte-Carlo draws of the stochastic parts (0: the means).

    Args:
        model: a :class:`TaskGraphModel` (put in eval mode for the call).
        x: a batch of inputs for its encoder.
        samples: K; 0 uses the expected synapse weights (no uncertainty).
        chunk_size: samples folded into the batch at once (default: memory-bounded).

    Returns:
        A :class:`Prediction`: task name -> :class:`TaskPrediction`.
    """
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 0:
        raise DataError(f"samples: expected an integer >= 0, got {samples!r}")
    flags = [(m, m.training) for m in model.modules()]  # restored one by one afterwards
    model.eval()
    try:
        sto = model.config.stochastic
        stochastic_rest = model.edge_synapses is not None or sto.heads
        custom = not isinstance(model.encoder, MLPEncoder)
        draw = samples > 0 and (stochastic_rest or sto.projections or (sto.encoder and not custom))
        K = samples if draw else 1
        if draw and sto.encoder and not custom:
            prefix, stage = x, 0  # fold the raw input: the encoder samples too
        else:
            z = model.encode(x, sample=False)  # (B, D), once
            prefix, stage = (z, 1) if draw and sto.projections else (model.embed(z, sample=False), 2)
        B = prefix.shape[0]
        edges = model.layout.num_edges * len(model.config.directions) \
            if model.gnn is not None else 0
        rows = B * (model.layout.num_tasks + edges) * model.config.task_dim
        k_chunk = chunk_size or max(1, min(K, _ELEMENT_BUDGET // max(rows, 1)))
        accs = [_Accumulator(g.kind) for g in model.layout.groups]
        done = 0
        while done < K:
            k = min(k_chunk, K - done)
            folded = prefix.repeat(k, *([1] * (prefix.dim() - 1)))  # (k*B, ...)
            h = folded
            if stage == 0:
                h = model.encode(h, sample=True)
            if stage <= 1:
                h = model.embed(h, sample=draw)
            h = model.propagate(h, sample=draw)  # (k*B, T, F)
            out = model.readout(h, sample=draw)
            for acc, block in zip(accs, out.blocks):
                acc.add(block.reshape(k, B, *block.shape[1:]))
            done += k
        blocks = [acc.result() for acc in accs]
        _unstandardize(model, blocks)
    finally:
        for module, flag in flags:
            module.training = flag
    _decode(model, blocks)
    return Prediction(model, blocks, samples)


def _unstandardize(model: Any, blocks: list[dict[str, Tensor]]) -> None:
    """Regression blocks from standardized units to the targets': loc + scale * f."""
    for g, group in enumerate(model.layout.groups):
        if group.kind == "regression":
            loc, scale = model.target_scaling(g)  # (T_g, k) each
            block = blocks[g]
            block["mean"] = loc + scale * block["mean"]  # (B, T_g, k)
            block["var"] = scale * scale * block["var"]


def _decode(model: Any, blocks: list[dict[str, Tensor]]) -> None:
    """Replace multiclass argmax labels by class-path-consistent ones where linked."""
    if not any(spec.class_parents for spec in model.hierarchy.tasks.values()):
        return
    probs = {}
    for g, group in enumerate(model.layout.groups):
        if group.kind == "multiclass":
            for j, name in enumerate(group.names):
                probs[name] = blocks[g]["mean"][:, j]
    decoded = decode_classes(model.hierarchy, probs)
    for g, group in enumerate(model.layout.groups):
        if group.kind == "multiclass":
            blocks[g]["label"] = torch.stack([decoded[n] for n in group.names], dim=1)
