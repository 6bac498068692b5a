r"""Weighted sparse aggregation with per-example edge weights.

Message passing with per-example synapse weights computes, for every example
:math:`b` and every target row :math:`r`,

.. math::
    \mathbf{o}_{b,r} = \sum_{e:\, \mathrm{dst}(e) = r} w_{b,e} \,
    \mathbf{h}_{b,\mathrm{src}(e)}.

Written with a gather and a scatter, autograd keeps the gathered
:math:`(B, E, F)` message tensor for the backward pass, which dominates both
time and memory on large hierarchies. :func:`weighted_aggregate` instead
multiplies a block-diagonal sparse CSR matrix :math:`\mathbf{A}(\mathbf{w})`
(one block of :math:`E` weights per example) with the stacked features, and
computes the gradients by hand:

.. math::
    \frac{\partial L}{\partial \mathbf{h}} = \mathbf{A}(\mathbf{w})^{\top}
    \frac{\partial L}{\partial \mathbf{o}}, \qquad
    \frac{\partial L}{\partial w_{b,e}} = \Big\langle
    \frac{\partial L}{\partial \mathbf{o}_{b,\mathrm{dst}(e)}},\,
    \mathbf{h}_{b,\mathrm{src}(e)} \Big\rangle,

the second as one sampled dense-dense product (``torch.sparse.sampled_addmm``)
on the pattern of :math:`\mathbf{A}`, which never materializes the per-edge
copies. Only the inputs are kept for the backward pass. The CSR indices of a
batch size are built once and cached on the :class:`EdgePlan`. Each of the three
products costs :math:`2 B E F` FLOPs (a multiply and an add per nonzero and feature).
"""
import warnings
from collections import OrderedDict
from typing import Optional, Tuple

import torch
from torch import Tensor

from taskgraph.errors import ArgumentError

# The CSR products used here are stable; torch flags all of CSR as beta once per process.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta",
                        category=UserWarning)

#: CSR indices of a batch are cached when they hold at most this many edges (B * E):
#: 16 M, 128 MB of int64 per orientation.
_CACHE_EDGES = 1 << 24
#: Number of (batch size, orientation) index pairs an :class:`EdgePlan` keeps.
_CACHE_SIZE = 4
#: Number of elements of the (B, chunk, F) products formed at once where the
#: sampled product is not available (devices other than CPU and CUDA).
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
        >>> plan.matrix(torch.ones(2, 3)).shape           # (B R, B S) block-diagonal
        torch.Size([6, 6])
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
        # in float64, so that a float64 model gets exact means (float32: the same values)
        self.inv_degree = 1.0 / count.clamp(min=1).index_select(0, self.group).double()  # (E,)
        #: Plans derived from this one (the same edges, other rows), built once by their users
        self.derived: dict = {}
        # (batch size, transpose) -> (crow, col) of the block-diagonal matrix
        self._index_cache: "OrderedDict[Tuple[int, bool], Tuple[Tensor, Tensor]]" = \
            OrderedDict()
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

    def _index(self, batch_size: int, transpose: bool) -> Tuple[Tensor, Tensor]:
        """``crow`` :math:`(B \\cdot rows + 1,)` and ``col`` :math:`(B E,)` of the
        block-diagonal matrix, from the cache when they were built before."""
        key = (batch_size, transpose)
        hit = self._index_cache.get(key)
        if hit is not None:
            self._index_cache.move_to_end(key)
            return hit
        if transpose:
            col, count, cols = self.bwd_col, self.bwd_count, self.num_dst
        else:
            col, count, cols = self.fwd_col, self.fwd_count, self.num_src
        B = batch_size
        offset = torch.arange(B, device=col.device).unsqueeze(1) * cols  # (B, 1)
        col_index = (col.unsqueeze(0) + offset).reshape(-1)  # (B * E,)
        crow = torch.zeros(B * count.numel() + 1, dtype=torch.long, device=col.device)
        torch.cumsum(count.repeat(B), dim=0, out=crow[1:])  # (B * rows + 1,)
        if B * self.num_edges <= _CACHE_EDGES:
            self._index_cache[key] = (crow, col_index)
            if len(self._index_cache) > _CACHE_SIZE:
                self._index_cache.popitem(last=False)
        return crow, col_index

    def matrix(self, weight: Tensor, *, transpose: bool = False,
               batch_size: Optional[int] = None) -> Tensor:
        r"""The block-diagonal CSR matrix of :obj:`weight` :math:`(B, E)` (or
        :math:`(1, E)`, repeated for :obj:`batch_size` blocks): :math:`(B R, B S)`,
        or :math:`(B S, B R)` with :obj:`transpose`."""
        B = weight.size(0) if batch_size is None else int(batch_size)
        perm = self.bwd_perm if transpose else self.fwd_perm
        rows, cols = ((self.num_src, self.num_dst) if transpose
                      else (self.num_dst, self.num_src))
        values = weight.index_select(1, perm)  # (B | 1, E)
        if values.size(0) != B:
            values = values.expand(B, -1)
        crow, col_index = self._index(B, transpose)
        return torch.sparse_csr_tensor(crow, col_index, values.reshape(-1),
                                       size=(B * rows, B * cols), check_invariants=False)


def _spmm(matrix: Tensor, dense: Tensor) -> Tensor:
    """``matrix @ dense`` for a CSR ``matrix``, written into a new buffer without the
    zero fill and copy that ``torch.mm`` does first."""
    out = dense.new_empty(matrix.size(0), dense.size(1))
    return torch.addmm(out, matrix, dense, beta=0, out=out)


def _edge_dots(plan: EdgePlan, weight: Tensor, grad: Tensor, h: Tensor,
               matrix: Optional[Tensor] = None) -> Tensor:
    r""":math:`\langle \mathbf{g}_{b,\mathrm{dst}(e)}, \mathbf{h}_{b,\mathrm{src}(e)}
    \rangle` for every example and edge: :math:`(B, E)` from grad :math:`(B, R, F)`
    and h :math:`(B, S, F)`; :obj:`matrix` is the forward matrix when already built."""
    B, S, F = h.shape
    if h.device.type in ("cpu", "cuda"):
        # sampled dense-dense product on the pattern of the forward matrix
        pattern = plan.matrix(weight, batch_size=B) if matrix is None else matrix
        dots = torch.sparse.sampled_addmm(pattern, grad.reshape(-1, F),
                                          h.reshape(B * S, F).t(), beta=0)
        values = dots.values().view(B, plan.num_edges)  # (B, E), sorted by target
        return torch.empty_like(values).index_copy_(1, plan.fwd_perm, values)
    out = h.new_empty(B, plan.num_edges)  # (B, E)
    chunk = max(1, _CHUNK_ELEMENTS // max(1, B * F))
    for start in range(0, plan.num_edges, chunk):
        src = plan.src[start:start + chunk]
        dst = plan.dst[start:start + chunk]
        out[:, start:start + chunk] = torch.einsum(
            "bef,bef->be", grad.index_select(1, dst), h.index_select(1, src))
    return out


class _WeightedAggregate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h: Tensor, weight: Tensor, plan: EdgePlan) -> Tensor:
        B, S, F = h.shape
        out = _spmm(plan.matrix(weight, batch_size=B), h.reshape(B * S, F))  # (B * R, F)
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
            matrix = plan.matrix(weight, transpose=True, batch_size=B)
            grad_h = _spmm(matrix, grad.view(B * plan.num_dst, F)).view(B, S, F)
        if ctx.needs_input_grad[1]:
            grad_w = _edge_dots(plan, weight, grad, h)  # (B, E)
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

    Raises:
        ArgumentError: :obj:`h` or :obj:`weight` does not fit the plan.

    Example:
        >>> plan = EdgePlan(torch.tensor([0, 0, 1]), torch.tensor([1, 2, 2]), 3, 3)
        >>> h = torch.ones(2, 3, 4)                   # (B, S, F)
        >>> w = torch.tensor([[1.0, 2.0, 3.0]])       # (1, E)
        >>> weighted_aggregate(h, w, plan)[0, :, 0].tolist()
        [0.0, 1.0, 5.0]
    """
    if h.dim() != 3 or h.size(1) != plan.num_src:
        raise ArgumentError(f"Expected 'h' of shape (B, {plan.num_src}, F) "
                            f"(got {tuple(h.shape)})")
    if weight.dim() != 2 or weight.size(1) != plan.num_edges \
            or weight.size(0) not in (1, h.size(0)):
        raise ArgumentError(f"Expected 'weight' of shape ({h.size(0)}, {plan.num_edges}) or "
                            f"(1, {plan.num_edges}) (got {tuple(weight.shape)})")
    if plan.num_edges == 0:
        return h.new_zeros(h.size(0), plan.num_dst, h.size(2))
    weight = weight.to(h.dtype)
    return _WeightedAggregate.apply(h, weight, plan)

