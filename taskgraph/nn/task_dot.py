r"""Per-task dot products, the scalar heads of :class:`~taskgraph.nn.TaskLinear`, as one
chunked autograd function.

For inputs :math:`\mathbf{x}_{r,t} \in \mathbb{R}^F` (every row :math:`r` of the
leading dimensions and task :math:`t`) and one weight vector :math:`\mathbf{w}_t` per task,

.. math::
    y_{r,t} = \langle \mathbf{x}_{r,t}, \mathbf{w}_t \rangle, \qquad
    \frac{\partial L}{\partial \mathbf{x}_{r,t}} = g_{r,t}\, \mathbf{w}_t, \qquad
    \frac{\partial L}{\partial \mathbf{w}_t} = \sum_r g_{r,t}\, \mathbf{x}_{r,t}

with :math:`g = \partial L / \partial y`. Written as ``(x * w).sum(-1)`` autograd keeps
a full :math:`(R, T, F)` product in the forward pass and, in the backward pass,
multiplies two more of them, one an expanded view that the CPU kernels handle slowly
(at :math:`R = 32`, :math:`T = 100{,}000`, :math:`F = 16` the head took about three times
as long as this function). Here the forward and the weight gradient go through the rows
a few at a time (about :math:`2^{18}` elements per chunk on the CPU, so each chunk's
product stays in cache), and only :math:`\partial L / \partial \mathbf{x}` is a full
tensor.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from taskgraph.errors import ArgumentError

__all__ = ["task_dot"]

#: elements of x in one chunk of rows on the CPU (1 MB of float32)
_CHUNK_ELEMENTS = 1 << 18


def _rows_per_chunk(x: Tensor) -> int:
    R, T, F = x.shape
    if x.device.type != "cpu":
        return max(1, R)
    return max(1, min(R, _CHUNK_ELEMENTS // max(1, T * F)))


class _TaskDot(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor) -> Tensor:
        R = x.shape[0]
        out = x.new_empty(x.shape[:-1])  # (R, T)
        step = _rows_per_chunk(x)
        for r0 in range(0, R, step):
            r1 = min(R, r0 + step)
            torch.sum(x[r0:r1] * w, dim=-1, out=out[r0:r1])  # (n, T)
        ctx.save_for_backward(x, w)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        x, w = ctx.saved_tensors
        needs = ctx.needs_input_grad
        grad_x = torch.mul(grad.unsqueeze(-1), w) if needs[0] else None  # (R, T, F)
        grad_w = None
        if needs[1]:
            grad_w = torch.zeros_like(w)  # (T, F)
            step = _rows_per_chunk(x)
            for r0 in range(0, x.shape[0], step):
                r1 = min(x.shape[0], r0 + step)
                grad_w += (x[r0:r1] * grad[r0:r1].unsqueeze(-1)).sum(0)
        return grad_x, grad_w


def task_dot(x: Tensor, w: Tensor) -> Tensor:
    r""":math:`y_{\dots,t} = \langle \mathbf{x}_{\dots,t}, \mathbf{w}_t \rangle` for every
    task (module docstring).

    Args:
        x (Tensor): :math:`(*, T, F)`.
        w (Tensor): :math:`(T, F)`.

    Returns:
        Tensor: :math:`(*, T)`, equal to ``(x * w).sum(-1)``.

    Raises:
        ArgumentError: the shapes do not fit.

    Example:
        >>> x, w = torch.randn(4, 3, 5), torch.randn(3, 5)
        >>> torch.allclose(task_dot(x, w), (x * w).sum(-1), atol=1e-6)
        True
    """
    if x.dim() < 2 or w.dim() != 2 or tuple(x.shape[-2:]) != tuple(w.shape):
        raise ArgumentError(f"task_dot: expected x of shape (*, T, F) and w of shape (T, F), "
                            f"got {tuple(x.shape)} and {tuple(w.shape)}")
    lead = x.shape[:-2]
    flat = x.reshape(-1, *w.shape)  # (R, T, F)
    if flat.shape[0] == 0:
        return (x * w).sum(-1)
    return _TaskDot.apply(flat.contiguous(), w.contiguous()).view(*lead, w.shape[0])
