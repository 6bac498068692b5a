r"""Monte-Carlo prediction with uncertainty, samples folded into the batch.

The deterministic prefix of the model (:meth:`~TaskGraphModel.deterministic_prefix`:
encoder and projections, unless they are stochastic) runs once; its output is repeated
``k`` times along the batch and the stochastic rest
(:meth:`~TaskGraphModel.sampled_suffix`: synapses, message passing, stochastic heads)
runs on ``k * B`` rows per chunk. Per task the K samples give

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

**What the K draws are.** With MC dropout (Gal & Ghahramani, 2016) the dropout modules
stay on and the synapses and stochastic layers keep their expected weights; with
synapse draws (``dropout=False``) the synapses and stochastic layers are sampled and
dropout is off. The default, ``dropout=None``, is MC dropout for a model with a dropout
module of :math:`p > 0` and synapse draws otherwise: measured against each other on
three HMC sets and the Fashion-MNIST hierarchy (``benchmarks/uncertainty.py``,
``benchmarks/results/uncertainty.md``), MC dropout has the lower NLL and ECE and the
better error detection on the HMC sets and is slightly worse than temperature scaling
on the Fashion-MNIST CNN, while the synapse draws are nowhere better calibrated than
the deterministic model. The
message dropout of :class:`~taskgraph.nn.gnn.HierarchyGNN` (the YAML's ``dropout``) is
functional, not a module, and stays off. Where a task has a temperature
(:mod:`taskgraph.model.temperature`), every draw's logits are divided by it first.

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
from torch import Tensor, nn

from taskgraph.errors import ArgumentError
from taskgraph.model.decode import decode_classes
from taskgraph.model.outputs import Prefix
from taskgraph.model.task_types import TaskType
from taskgraph.model.temperature import scaled_logits

__all__ = ["predict", "uses_dropout", "Prediction", "TaskPrediction"]

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
    −1 where no class fits the decoded parent class), multilabel (B, K) 0/1.
    ``classes``: class names, if any.
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
        kind = self.layout.groups[g].task_type
        pick = {k: kind.task_view(v, j) for k, v in self.blocks[g].items()}
        if not kind.probabilistic:
            return TaskPrediction(kind.name, value=pick["mean"], variance=pick["var"])
        return TaskPrediction(kind.name, probs=pick["mean"], std=pick["std"],
                              entropy=pick["entropy"], mutual_info=pick["mi"],
                              label=pick["label"], classes=self.hierarchy[name].classes)

    def __iter__(self) -> Iterator[str]:
        return iter(self.layout.names)

    def __len__(self) -> int:
        return len(self.layout.names)

    def __repr__(self) -> str:
        return f"Prediction({len(self)} tasks, samples={self.samples})"


class _Accumulator:
    """Running sums over samples for one group (chunk-friendly: everything is linear)."""

    def __init__(self, kind: TaskType) -> None:
        self.kind, self.n = kind, 0
        self.s = self.s2 = self.ent = None

    def add(self, values: Tensor) -> None:  # (k, B, ...)
        p = self.kind.activation(values.float())
        ent = self.kind.entropy(p)  # None for values
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
        if not self.kind.probabilistic:
            return {"mean": mean, "var": var}
        entropy = self.kind.entropy(mean)
        return {"mean": mean, "std": var.sqrt(), "entropy": entropy,
                "mi": (entropy - self.ent / self.n).clamp_min(0),
                "label": self.kind.decision(mean)}


def predict(model: Any, x: Any, *, samples: int = 0, chunk_size: int | None = None,
            dropout: bool | None = None) -> Prediction:
    """Predict with ``samples`` Monte-Carlo draws (0: the expected weights, no draws).

    With MC dropout (``dropout=True``, and the default for a model with dropout) every
    dropout module (:class:`torch.nn.Dropout` and its relatives) stays in train mode,
    everything else is in eval mode and the synapses keep their expected weights; the
    model runs from its first dropout module on ``K * B`` rows per chunk (the encoder's
    part before that module runs once, where it can be split off). The
    temperatures of :func:`taskgraph.model.temperature.calibrate` (1 until fitted)
    divide the logits before they become probabilities, for every draw.

    Args:
        model: a :class:`TaskGraphModel` (put in eval mode for the call).
        x: a batch of inputs for its encoder.
        samples: K; 0 uses the expected synapse weights (no uncertainty).
        chunk_size: samples folded into the batch at once (default: memory-bounded).
        dropout: what the K draws are (module docstring): ``True`` MC dropout (needs
            ``samples >= 1`` and a dropout module with ``p > 0``), ``False`` synapse
            draws, ``None`` (default) MC dropout where the model has dropout, else
            synapse draws; see :func:`uses_dropout`.

    Returns:
        A :class:`Prediction`: task name -> :class:`TaskPrediction`.

    Raises:
        ArgumentError: ``samples`` is not an integer >= 0, a bad ``chunk_size``, or
            ``dropout=True`` with ``samples=0`` or with a model that has no dropout.

    Example:
        >>> import torch, taskgraph as tg
        >>> model = tg.compile("hierarchies/animals.yaml", in_features=6, task_dim=4,
        ...                    encoder_spec={"hidden": [8], "dropout": 0.5})
        >>> pred = predict(model, torch.randn(3, 6), samples=16)   # MC dropout: the default
        >>> bool((pred["diet"].std > 0).any()), pred["diet"].probs.shape
        (True, torch.Size([3, 3]))
    """
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 0:
        raise ArgumentError(f"predict: samples: expected an integer >= 0, got {samples!r}")
    if chunk_size is not None and (not isinstance(chunk_size, int)
                                   or isinstance(chunk_size, bool) or chunk_size < 1):
        raise ArgumentError(f"predict: chunk_size: expected a positive integer or None, got "
                            f"{chunk_size!r}")
    drops = _dropout_modules(model, samples) if uses_dropout(model, samples, dropout) else []
    flags = [(m, m.training) for m in model.modules()]  # restored one by one afterwards
    model.eval()
    try:
        accs = [_Accumulator(g.task_type) for g in model.layout.groups]
        for module in drops:
            module.train()  # MC dropout: only the dropout modules draw
        if drops:
            _dropout_draws(model, x, samples, chunk_size, accs)
        elif samples > 0 and model.stochastic:
            prefix = model.deterministic_prefix(x)  # once, expected weights
            B = prefix.batch_size
            done, k_chunk = 0, chunk_size or _samples_per_chunk(model, B, samples)
            while done < samples:
                k = min(k_chunk, samples - done)
                out = model.sampled_suffix(prefix.repeat(k))  # (k*B, ...) blocks
                for acc, block in zip(accs, scaled_logits(model, out)):
                    acc.add(block.reshape(k, B, *block.shape[1:]))
                done += k
        else:  # the expected weights, once (samples=0, or nothing to sample)
            for acc, block in zip(accs, scaled_logits(model, model(x, sample=False))):
                acc.add(block[None])
        blocks = [acc.result() for acc in accs]
        _unstandardize(model, blocks)
    finally:
        for module, flag in flags:
            module.training = flag
    _decode(model, blocks)
    return Prediction(model, blocks, samples)


def uses_dropout(model: Any, samples: int, dropout: bool | None) -> bool:
    """Whether :func:`predict` with these arguments draws MC dropout.

    ``dropout=None`` resolves to ``True`` when ``samples > 0`` and the model has a
    dropout module with ``p > 0``, else ``False``; ``True`` and ``False`` are kept.

    Raises:
        ArgumentError: ``dropout`` is not ``True``, ``False`` or ``None``.

    Example:
        >>> import taskgraph as tg
        >>> def model(p):
        ...     return tg.compile("hierarchies/animals.yaml", in_features=6, task_dim=4,
        ...                       encoder_spec={"hidden": [8], "dropout": p})
        >>> plain, drop = model(0.0), model(0.2)
        >>> uses_dropout(plain, 8, None), uses_dropout(drop, 8, None), uses_dropout(drop, 0, None)
        (False, True, False)
        >>> uses_dropout(drop, 8, False)
        False
    """
    if dropout is not None and not isinstance(dropout, bool):
        raise ArgumentError(f"predict: dropout: expected True, False or None, got {dropout!r}")
    if dropout is None:
        return samples > 0 and any(isinstance(m, DROPOUT_MODULES) and m.p > 0
                                   for m in model.modules())
    return dropout


#: The dropout modules MC dropout keeps on (``nn.Dropout``, its 1d/2d/3d and alpha kin).
DROPOUT_MODULES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
            nn.FeatureAlphaDropout)


def _dropout_modules(model: Any, samples: int) -> list[nn.Module]:
    """The model's dropout modules; ArgumentError without samples or without dropout."""
    if samples == 0:
        raise ArgumentError("predict: dropout=True needs samples >= 1 (the number of "
                            "forward passes with dropout on), got samples=0")
    drops = [m for m in model.modules() if isinstance(m, DROPOUT_MODULES)]
    if not any(getattr(m, "p", 0.0) > 0 for m in drops):  # p = 0: every draw the same
        raise ArgumentError("predict: dropout=True, but the model has no dropout module "
                            "with p > 0 (nn.Dropout); compile it with e.g. encoder dropout "
                            "> 0")
    return drops


def _dropout_draws(model: Any, x: Any, samples: int, chunk_size: int | None,
                   accs: list[_Accumulator]) -> None:
    """K forward passes with dropout on and expected synapse weights, folded into the
    batch when ``x`` is a tensor (one pass per draw otherwise). Where the encoder can be
    split at its first dropout module (``dropout_split``: the MLP encoder, a user's
    ``nn.Sequential``), the part before it runs once, not K times: the draws are the same,
    since nothing before the first dropout module is random."""
    if not isinstance(x, Tensor):
        for _ in range(samples):
            for acc, block in zip(accs, scaled_logits(model, model(x, sample=False))):
                acc.add(block[None])
        return
    B = x.shape[0]
    split = getattr(model.encoder, "dropout_split", lambda: None)()
    head = split[0](x) if split is not None else None  # (B, ...) before the first dropout
    done, k_chunk = 0, chunk_size or _samples_per_chunk(model, B, samples)
    while done < samples:
        k = min(k_chunk, samples - done)
        if head is None:
            prefix = Prefix(x, 0).repeat(k)
        else:  # the encoder's head ran once; each draw starts at its first dropout
            prefix = Prefix(split[1](head.repeat(k, *([1] * (head.dim() - 1)))), 1)
        out = model.sampled_suffix(prefix, sample=False)  # (k*B, ...)
        for acc, block in zip(accs, scaled_logits(model, out)):
            acc.add(block.reshape(k, B, *block.shape[1:]))
        done += k


def _samples_per_chunk(model: Any, B: int, samples: int) -> int:
    """Samples folded into one chunk so it stays within :data:`_ELEMENT_BUDGET`."""
    layout = model.layout
    edges = layout.num_edges * len(model.config.directions) if model.gnn is not None else 0
    rows = B * (layout.num_tasks + edges) * model.config.task_dim
    return max(1, min(samples, _ELEMENT_BUDGET // max(rows, 1)))


def _unstandardize(model: Any, blocks: list[dict[str, Tensor]]) -> None:
    """Standardized blocks (regression) back to the targets' units: loc + scale * f."""
    for g, block in enumerate(blocks):
        scaling = model.target_scaling(g)
        if scaling is not None:
            loc, scale = scaling  # (T_g, k) each
            block["mean"] = loc + scale * block["mean"]  # (B, T_g, k)
            block["var"] = scale * scale * block["var"]


def _decode(model: Any, blocks: list[dict[str, Tensor]]) -> None:
    """Replace argmax labels by class-path-consistent ones where ``class_parents`` link
    tasks (the types decoded jointly: multiclass)."""
    if not any(spec.class_parents for spec in model.hierarchy.tasks.values()):
        return
    joint = [g for g, group in enumerate(model.layout.groups) if group.task_type.joint_decoding]
    probs = {name: blocks[g]["mean"][:, j] for g in joint
             for j, name in enumerate(model.layout.groups[g].names)}
    decoded = decode_classes(model.hierarchy, probs)
    for g in joint:
        blocks[g]["label"] = torch.stack([decoded[n] for n in model.layout.groups[g].names], 1)
