r"""What a task sends along its edges when ``send: prediction``: its head's prediction.

With ``send: embedding`` a task sends its embedding :math:`\mathbf{h}_s`, the same kind
of thing every task's projection computes from the shared encoder. With
``send: prediction`` it sends what its own head has learned to predict from it,

.. math::
    \mathbf{m}_s = \sum_{k=1}^{W_s} \pi_{sk}\, \mathbf{o}_{sk},
    \qquad \pi_s = \phi_s\big(\mathrm{head}_s(\mathbf{h}_s)\big)

where :math:`\phi_s` is the task type's activation (sigmoid, softmax, or the value of a
regression output) and :math:`\mathbf{o}_{sk} \in \mathbb{R}^F` is a learned embedding of
output :math:`k` of task :math:`s`. A child with few labels thus reads its parent's
prediction, which the parent learned from all of its own labels, through the edge's
synapse, instead of having to learn the parent's function from the shared encoder.

One batched product per head group; no loop over tasks.

Example:
    >>> import torch, taskgraph as tg
    >>> model = tg.compile("hierarchies/animals.yaml", in_features=6, task_dim=4,
    ...                    send="prediction")
    >>> [tuple(t.shape) for t in model.sources.tables]    # (T_g, W_g, F) per head group
    [(1, 1, 4), (1, 3, 4), (1, 4, 4), (1, 1, 4)]
    >>> model.propagate(torch.randn(2, 4, 4)).shape     # (B, T, F)
    torch.Size([2, 4, 4])
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["PredictionSource"]


class PredictionSource(nn.Module):
    """Output embeddings :math:`\\mathbf{o}_{sk}`, one table per head group.

    Args:
        layout: the model's :class:`~taskgraph.model.layout.TaskLayout`.
        channels: the task embedding width :math:`F`.
    """

    def __init__(self, layout: Any, channels: int) -> None:
        super().__init__()
        self.layout = layout
        self.channels = channels
        self.tables = nn.ParameterList(
            nn.Parameter(torch.empty(len(g.tasks), g.width, channels))  # (T_g, W_g, F)
            for g in layout.groups)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for table in self.tables:
            nn.init.normal_(table, std=1.0 / math.sqrt(self.channels))

    def forward(self, h: Tensor, heads: nn.ModuleList, *, sample: bool | None = None,
                group_tasks: Any = None, whole: bool = False) -> Tensor:
        """``(B, T, F)`` embeddings -> ``(B, T, F)`` embedded predictions."""
        out = torch.empty_like(h)  # (B, T, F)
        for g, (head, group, table) in enumerate(zip(heads, self.layout.groups, self.tables)):
            index = None if whole else group_tasks(g)
            hg = h if index is None else h.index_select(-2, index)  # (B, T_g, F)
            probs = group.task_type.activation(head(hg, sample=sample))  # (B, T_g, W_g)
            sent = torch.einsum("btw,twf->btf", probs, table)  # (B, T_g, F)
            if index is None:
                out = sent
            else:
                out.index_copy_(-2, index, sent)
        return out

    def extra_repr(self) -> str:
        return f"groups={len(self.tables)}, channels={self.channels}"
