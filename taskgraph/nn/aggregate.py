r"""Weighted sparse aggregation with per-example edge weights.

Message passing with per-example synapse weights computes, for every example
:math:`b` and every target node :math:`t`,

.. math::
    \mathbf{o}_{b,t} = \sum_{e:\, \mathrm{dst}(e) = t} w_{b,e} \,
    \mathbf{h}_{b,\mathrm{src}(e)}.

Written with a gather and a scatter, autograd keeps the gathered
:math:`(B, E, F)` message tensor for the backward pass, which dominates both
time and memory on large hierarchies. :func:`weighted_aggregate` instead
multiplies a block-diagonal sparse CSR matrix (one block of :math:`E` weights
per example) with the stacked node features, and computes the gradients by
hand: the transposed sparse product for the features, and per-edge dot
products, in bounded chunks, for the weights. Only the inputs are kept for the
backward pass.
"""
import warnings
from typing import Optional, Tuple

import torch
from torch import Tensor

# The CSR products used here are stable; torch flags all of CSR as beta once per process.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta",
                        category=UserWarning)

#: Number of elements of the (B, chunk, F) products formed at once when the
#: gradient of the edge weights is computed.
_CHUNK_ELEMENTS = 1 << 22


class EdgePlan:
    r"""The index structure of one bipartite edge set, sorted once for the
    sparse products of :func:`weighted_aggregate`.

    Args:
        src (Tensor): Source node of every edge, :math:`(E,)`, in
            :math:`[0, S)`.
        dst (Tensor): Target node of every edge, :math:`(E,)`, in
            :math:`[0, R)`.
        num_src (int): Number :math:`S` of source nodes.
        num_dst (int): Number :math:`R` of target nodes.
        group (Tensor, optional): The group of every edge, :math:`(E,)` in
            :math:`[0, G)`, for per-group means (:obj:`inv_degree`) and
            softmaxes. (default: the target :obj:`dst`)
        num_groups (int, optional): Number :math:`G` of groups.
            (default: :obj:`num_dst`)

    Example:
        >>> plan = EdgePlan(torch.tensor([0, 0, 1]), torch.tensor([1, 2, 2]), 3, 3)
        >>> plan.in_degree().tolist(), plan.inv_degree.tolist()
        ([0, 1, 2], [1.0, 0.5, 0.5])
    """
    def __init__(self, src: Tensor, dst: Tensor, num_src: int, num_dst: int, *,
                 group: Optional[Tensor] = None, num_groups: Optional[int] = None) -> None:
        self.src, self.dst = src.long(), dst.long()  # (E,), (E,)
        self.num_src, self.num_dst = int(num_src), int(num_dst)
        self.num_edges = int(self.src.numel())
        # forward product: rows are targets; backward product: rows are sources.
        self.fwd_perm = torch.argsort(self.dst, stable=True)  # (E,)
        self.fwd_col = self.src[self.fwd_perm]  # (E,)
        self.fwd_count = self._count(self.dst, self.num_dst)  # (R,)
        self.bwd_perm = torch.argsort(self.src, stable=True)  # (E,)
        self.bwd_col = self.dst[self.bwd_perm]  # (E,)
        self.bwd_count = self._count(self.src, self.num_src)  # (S,)
        # the group of every edge over which means and softmaxes are taken (default: its
        # target), and 1 / (edges in that group): the weights of a mean
        self.group = self.dst if group is None else group.long()  # (E,)
        self.num_groups = self.num_dst if num_groups is None else int(num_groups)
        count = self._count(self.group, self.num_groups)  # (G,)
        self.inv_degree = 1.0 / count.clamp(min=1).index_select(0, self.group)  # (E,)
        # the one-block adjacency (R, S): PyG's MessagePassing.propagate dispatches to a
        # fused message_and_aggregate only when handed a sparse adjacency
        self.adjacency = self.matrix(torch.ones(1, self.num_edges, device=self.src.device))

    @staticmethod
    def _count(index: Tensor, size: int) -> Tensor:
        # scatter_add_ instead of bincount: no host sync on accelerators.
        count = torch.zeros(size, dtype=torch.long, device=index.device)
        return count.scatter_add_(0, index, torch.ones_like(index))

    def in_degree(self) -> Tensor:
        """Number of incoming edges of every target node, :math:`(R,)`."""
        return self.fwd_count

    def matrix(self, weight: Tensor, *, transpose: bool = False) -> Tensor:
        r"""The block-diagonal CSR matrix of :obj:`weight` :math:`(B, E)`:
        :math:`(B R, B S)`, or :math:`(B S, B R)` with :obj:`transpose`."""
        B = weight.size(0)
        if transpose:
            perm, col, count = self.bwd_perm, self.bwd_col, self.bwd_count
            rows, cols = self.num_src, self.num_dst
        else:
            perm, col, count = self.fwd_perm, self.fwd_col, self.fwd_count
            rows, cols = self.num_dst, self.num_src
        values = weight.index_select(1, perm).reshape(-1)  # (B * E,)
        offset = torch.arange(B, device=col.device).unsqueeze(1) * cols  # (B, 1)
        col_index = (col.unsqueeze(0) + offset).reshape(-1)  # (B * E,)
        crow = torch.zeros(B * rows + 1, dtype=torch.long, device=col.device)
        torch.cumsum(count.repeat(B), dim=0, out=crow[1:])  # (B * rows + 1,)
        return torch.sparse_csr_tensor(crow, col_index, values, size=(B * rows, B * cols),
                                       check_invariants=False)


class _WeightedAggregate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h: Tensor, weight: Tensor, plan: EdgePlan) -> Tensor:
        B, S, F = h.shape
        w = weight.expand(B, -1).contiguous()  # (B, E)
        out = plan.matrix(w) @ h.reshape(B * S, F)  # (B * R, F)
        ctx.save_for_backward(h, weight)
        ctx.plan = plan
        return out.view(B, plan.num_dst, F)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tuple[Optional[Tensor], Optional[Tensor], None]:
        h, weight = ctx.saved_tensors
        plan: EdgePlan = ctx.plan
        B, S, F = h.shape
        grad = grad.contiguous()  # (B, R, F)
        grad_h = grad_w = None
        if ctx.needs_input_grad[0]:
            w = weight.expand(B, -1).contiguous()  # (B, E)
            grad_h = plan.matrix(w, transpose=True) @ grad.reshape(B * plan.num_dst, F)
            grad_h = grad_h.view(B, S, F)
        if ctx.needs_input_grad[1]:
            grad_w = h.new_empty(B, plan.num_edges)  # (B, E)
            chunk = max(1, _CHUNK_ELEMENTS // max(1, B * F))
            for start in range(0, plan.num_edges, chunk):
                src = plan.src[start:start + chunk]
                dst = plan.dst[start:start + chunk]
                grad_w[:, start:start + chunk] = torch.einsum(
                    "bef,bef->be", grad.index_select(1, dst), h.index_select(1, src))
            if weight.size(0) != B:
                grad_w = grad_w.sum(dim=0, keepdim=True)  # (1, E)
        return grad_h, grad_w, None


def weighted_aggregate(h: Tensor, weight: Tensor, plan: EdgePlan) -> Tensor:
    r"""Sums :math:`w_{b,e} \mathbf{h}_{b,\mathrm{src}(e)}` into every edge's
    target, per example, without materializing the :math:`(B, E, F)` messages
    for the backward pass.

    Args:
        h (Tensor): Source features, :math:`(B, S, F)`.
        weight (Tensor): Edge weights, :math:`(B, E)` or :math:`(1, E)`.
        plan (EdgePlan): The edges.

    Returns:
        Tensor: :math:`(B, R, F)`.

    Example:
        >>> plan = EdgePlan(torch.tensor([0, 0, 1]), torch.tensor([1, 2, 2]), 3, 3)
        >>> h = torch.ones(2, 3, 4)                   # (B, S, F)
        >>> w = torch.tensor([[1.0, 2.0, 3.0]])       # (1, E)
        >>> weighted_aggregate(h, w, plan)[0, :, 0].tolist()
        [0.0, 1.0, 5.0]
    """
    if h.dim() != 3 or h.size(1) != plan.num_src:
        raise ValueError(f"Expected 'h' of shape (B, {plan.num_src}, F) "
                         f"(got {tuple(h.shape)})")
    if weight.dim() != 2 or weight.size(1) != plan.num_edges \
            or weight.size(0) not in (1, h.size(0)):
        raise ValueError(f"Expected 'weight' of shape ({h.size(0)}, {plan.num_edges}) or "
                         f"(1, {plan.num_edges}) (got {tuple(weight.shape)})")
    if plan.num_edges == 0:
        return h.new_zeros(h.size(0), plan.num_dst, h.size(2))
    weight = weight.to(h.dtype)
    return _WeightedAggregate.apply(h, weight, plan)
