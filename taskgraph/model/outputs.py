"""`TaskOutputs`: a model's logits per task, stored as one tensor per head group; and
`Prefix`, the part of a forward pass ``predict`` computes once before sampling the rest.

It reads like ``{task name: logits}`` but holds only the group blocks, so a
100,000-task model does not build 100,000 tensors per batch. A task's logits are a view
of its group's block, made when asked for.

Shapes per task: ``binary`` (B,), ``multiclass`` / ``multilabel`` (B, K),
``regression`` (B,) or (B, k).

Example:
    >>> import torch
    >>> from taskgraph.model.layout import HeadGroup
    >>> groups = [HeadGroup("binary", 1, ("a", "b"), (0, 1))]
    >>> out = TaskOutputs(groups, [torch.zeros(4, 2)])
    >>> sorted(out), out["a"].shape
    (['a', 'b'], torch.Size([4]))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Iterator, Sequence

from torch import Tensor

from taskgraph.model.layout import HeadGroup

__all__ = ["TaskOutputs", "Prefix"]


class TaskOutputs(Mapping):
    """Task name -> logits, backed by per-group blocks.

    Attributes:
        blocks: per group, ``(B, T_g)`` for binary, ``(B, T_g, K)`` for multiclass and
            multilabel, ``(B, T_g, k)`` for regression.
        raw_binary: the binary block before the coherence constraint (``None`` when the
            model is not coherent); the MC loss trains on it.
    """

    def __init__(self, groups: Sequence[HeadGroup], blocks: Sequence[Tensor],
                 raw_binary: Tensor | None = None,
                 where: dict[str, tuple[int, int]] | None = None) -> None:
        self.groups = list(groups)
        self.blocks = list(blocks)
        self.raw_binary = raw_binary
        # name -> (group, position): the model passes its layout's table (built once)
        self._where = where if where is not None else {
            name: (g, j) for g, grp in enumerate(self.groups) for j, name in enumerate(grp.names)}

    def __getitem__(self, name: str) -> Tensor:
        try:
            g, j = self._where[name]
        except KeyError:
            raise KeyError(f"no task {name!r} in these outputs") from None
        return self.groups[g].task_type.task_view(self.blocks[g], j)

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    @property
    def batch_size(self) -> int:
        return self.blocks[0].shape[0] if self.blocks else 0

    def __repr__(self) -> str:
        shapes = ", ".join(f"{g.kind}x{len(g.names)}: {tuple(b.shape)}"
                           for g, b in zip(self.groups, self.blocks))
        return f"TaskOutputs({len(self)} tasks; {shapes})"


@dataclass(frozen=True)
class Prefix:
    """What :meth:`TaskGraphModel.deterministic_prefix` computed once: the output of the
    stages before the first stochastic one, and the stage the sampled rest starts at.

    Example:
        >>> import torch
        >>> p = Prefix(torch.arange(4.0).view(2, 2), start=1).repeat(3)
        >>> p.batch_size, p.value[:, 0].tolist(), p.start
        (6, [0.0, 2.0, 0.0, 2.0, 0.0, 2.0], 1)
    """

    value: Tensor  # (B, ...): the input, z (B, D) or H^0 (B, T, F)
    start: int

    @property
    def batch_size(self) -> int:
        return self.value.shape[0]

    def repeat(self, k: int) -> "Prefix":
        """``k`` copies along the batch: ``(k * B, ...)``, copy-major."""
        return Prefix(self.value.repeat(k, *([1] * (self.value.dim() - 1))), self.start)
