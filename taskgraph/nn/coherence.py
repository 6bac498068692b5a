r"""Hierarchy-coherent outputs for binary label hierarchies (C-HMCNN)."""
from typing import Any, List, Tuple

import torch
from torch import Tensor


def _find_cycle(children: List[List[int]], remaining: List[int]) -> List[int]:
    # Every node left over by the leaf-first sweep has a left-over child.
    start = next(v for v, r in enumerate(remaining) if r > 0)
    path, position = [start], {start: 0}
    while True:
        v = next(c for c in children[path[-1]] if remaining[c] > 0)
        if v in position:
            return path[position[v]:] + [v]
        position[v] = len(path)
        path.append(v)


def _heights(edge_index: Tensor, num_tasks: int) -> List[int]:
    r"""Longest path from every node down to a leaf, in :math:`O(T + E)`;
    raises :class:`ValueError` naming a cycle if there is one."""
    parents_of: List[List[int]] = [[] for _ in range(num_tasks)]
    children_of: List[List[int]] = [[] for _ in range(num_tasks)]
    for p, c in zip(edge_index[0].tolist(), edge_index[1].tolist()):
        parents_of[c].append(p)
        children_of[p].append(c)
    remaining = [len(cs) for cs in children_of]
    height = [0] * num_tasks
    stack = [v for v in range(num_tasks) if remaining[v] == 0]
    done = 0
    while stack:
        v = stack.pop()
        done += 1
        for p in parents_of[v]:
            height[p] = max(height[p], height[v] + 1)
            remaining[p] -= 1
            if remaining[p] == 0:
                stack.append(p)
    if done < num_tasks:
        cycle = " -> ".join(str(v) for v in _find_cycle(children_of, remaining))
        raise ValueError(f"Expected 'edge_index' to be acyclic "
                         f"(got the cycle {cycle})")
    return height


class _DescendantMax(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, coherence: "Coherence") -> Tensor:
        out, arg = coherence._sweep(x, track=True)  # (B, T), (B, T)
        ctx.save_for_backward(arg)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> Tuple[Tensor, None]:
        (arg,) = ctx.saved_tensors
        return torch.zeros_like(grad).scatter_add_(1, arg, grad), None  # (B, T)


class Coherence(torch.nn.Module):
    r"""Makes the scores of a binary label hierarchy coherent, as in the
    constraint module of C-HMCNN (Giunchiglia and Lukasiewicz, NeurIPS 2020):
    the output of a node is the maximum of the raw scores over the node and
    all of its descendants :math:`\mathcal{D}(t)`,

    .. math::
        \tilde{y}_t = \max_{u \in \{t\} \cup \mathcal{D}(t)} y_u,

    so that a parent's probability is never below a child's. It works on
    logits (the sigmoid is monotone, so the maximum of logits is the logit
    of the maximum probability).

    No dense :math:`T \times T` ancestor matrix is ever built: at
    construction the edges are grouped into levels by the height of their
    parent (the longest path from it down to a leaf), and :meth:`forward`
    sweeps the levels in increasing height, taking a scatter-max of the
    children into the parents. A node of height :math:`h` only has children
    of smaller height, so after its level it holds the maximum over all its
    descendants. The sweep also records which input attains each maximum, and
    the backward pass is one scatter of the gradient to those inputs (as for
    :func:`torch.max` along a dimension, an exact tie sends it to one element:
    the node itself if it is among the tied, else one tied descendant). Time
    and memory are :math:`O(B (T + E))` forward and backward, however deep
    the hierarchy.

    Args:
        edge_index (torch.Tensor): Edges parent :math:`\to` child of shape
            :math:`(2, E)`; a node may have several parents, but the graph
            must be acyclic.
        num_tasks (int): The number of nodes :math:`T`.

    Shapes:
        - **input:** logits :math:`(B, T)` (any leading dimensions :math:`*`)
        - **output:** constrained logits :math:`(B, T)`

    Example:
        >>> edge_index = torch.tensor([[0, 0, 1], [1, 2, 3]])  # 0->1->3, 0->2
        >>> coherence = Coherence(edge_index, num_tasks=4)
        >>> logits = torch.tensor([[-2.0, 0.5, -1.0, 3.0]])
        >>> coherence(logits)
        tensor([[ 3.,  3., -1.,  3.]])
        >>> coherence.violations(logits), coherence.violations(coherence(logits))
        (3, 0)
        >>> coherence
        Coherence(num_tasks=4, num_edges=3, levels=2)
    """
    def __init__(self, edge_index: Any, num_tasks: int) -> None:
        super().__init__()
        if (isinstance(num_tasks, bool) or not isinstance(num_tasks, int)
                or num_tasks < 0):
            raise ValueError(f"Expected 'num_tasks' to be a non-negative int "
                             f"(got {num_tasks!r})")
        edge_index = torch.as_tensor(edge_index).detach().cpu()
        if edge_index.numel() == 0:
            edge_index = edge_index.reshape(2, 0)
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"Expected 'edge_index' of shape (2, E) "
                             f"(got {tuple(edge_index.shape)})")
        if edge_index.is_floating_point() or edge_index.is_complex():
            raise ValueError(f"Expected 'edge_index' of an integer dtype "
                             f"(got {edge_index.dtype})")
        edge_index = edge_index.long()
        if edge_index.numel() > 0:
            low, high = int(edge_index.min()), int(edge_index.max())
            if low < 0 or high >= num_tasks:
                raise ValueError(f"Expected 'edge_index' entries in "
                                 f"[0, {num_tasks}) (got values in "
                                 f"[{low}, {high}])")

        self.num_tasks = num_tasks
        self.num_edges = edge_index.size(1)

        height = torch.tensor(_heights(edge_index, num_tasks),
                              dtype=torch.long)  # (T,)
        parent, child = edge_index[0], edge_index[1]  # (E,), (E,)
        # Sort edges by (height of parent, parent): each level is a slice.
        key = height[parent] * max(num_tasks, 1) + parent  # (E,)
        key, order = torch.sort(key, stable=True)
        parent, child = parent[order], child[order]
        edge_height = height[parent]  # (E,)
        # Distinct parents of each level and each edge's slot among them.
        nodes, slot = torch.unique_consecutive(parent, return_inverse=True)
        node_height = height[nodes]  # (N,)
        num_levels = int(height.max()) if num_tasks > 0 else 0
        edge_ptr = torch.searchsorted(edge_height,
                                      torch.arange(1, num_levels + 2))
        node_ptr = torch.searchsorted(node_height,
                                      torch.arange(1, num_levels + 2))
        slot = slot - node_ptr[edge_height - 1] if slot.numel() else slot

        self.num_levels = num_levels
        self.edge_ptr: Tuple[int, ...] = tuple(edge_ptr.tolist())  # (L+1,)
        self.node_ptr: Tuple[int, ...] = tuple(node_ptr.tolist())  # (L+1,)
        self.register_buffer("height", height, persistent=False)  # (T,)
        self.register_buffer("edge_parent", parent, persistent=False)  # (E,)
        self.register_buffer("edge_child", child, persistent=False)  # (E,)
        self.register_buffer("edge_slot", slot, persistent=False)  # (E,)
        self.register_buffer("level_nodes", nodes, persistent=False)  # (N,)

        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Coherence has no learnable parameters."""

    def _check(self, name: str, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() < 1 or x.size(-1) != self.num_tasks:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"Expected '{name}' of shape (B, {self.num_tasks}) "
                             f"(got {shape})")
        return x.reshape(-1, self.num_tasks)  # (B, T)

    @torch.no_grad()
    def _sweep(self, x: Tensor, *, track: bool = False) -> Tuple[Tensor, Tensor]:
        # One in-place step per level, outside autograd; with track=True also
        # the index of the input each output comes from (the gradient's target).
        out = x.clone()  # (B, T)
        B = out.size(0)
        arg = (torch.arange(self.num_tasks, device=x.device).expand(B, -1).clone()
               if track else out.new_empty(0, dtype=torch.long))  # (B, T)
        for level in range(self.num_levels):
            e0, e1 = self.edge_ptr[level], self.edge_ptr[level + 1]
            n0, n1 = self.node_ptr[level], self.node_ptr[level + 1]
            nodes = self.level_nodes[n0:n1]  # (N_l,)
            child = self.edge_child[e0:e1]  # (E_l,)
            slot = self.edge_slot[e0:e1].expand(B, -1)  # (B, E_l)
            vals = out.index_select(1, child)  # (B, E_l)
            cur = out.index_select(1, nodes)  # (B, N_l)
            new = cur.scatter_reduce(1, slot, vals, reduce="amax", include_self=True)
            if track:
                # A node keeps its own index on a tie; else a winning child's.
                won = vals == new.gather(1, slot)  # (B, E_l)
                cand = torch.where(won, arg.index_select(1, child), -1)  # (B, E_l)
                best = torch.full_like(cur, -1, dtype=torch.long).scatter_reduce(
                    1, slot, cand, reduce="amax", include_self=True)  # (B, N_l)
                own = arg.index_select(1, nodes)  # (B, N_l)
                best = torch.where((cur == new) | (best < 0), own, best)  # NaN: itself
                arg.index_copy_(1, nodes, best)
            out.index_copy_(1, nodes, new)  # (B, T)
        return out, arg

    def _max(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return _DescendantMax.apply(x, self)
        return self._sweep(x)[0]

    def forward(self, logits: Tensor) -> Tensor:
        r"""Returns the constrained logits, the maximum over each node and
        its descendants."""
        x = self._check("logits", logits)  # (B, T)
        return self._max(x).view(logits.shape)

    def mc_logits(self, logits: Tensor, targets: Tensor) -> Tensor:
        r"""Returns the input of C-HMCNN's max-constraint loss (MCLoss).

        A node labelled 1 gets the maximum over itself and those of its
        descendants labelled 1; a node labelled 0 or missing (-1) gets the
        full constrained maximum of :meth:`forward`. Apply binary cross
        entropy with logits to the result, masked by :obj:`targets != -1`.

        Args:
            logits (torch.Tensor): Raw logits :math:`(B, T)`.
            targets (torch.Tensor): Labels :math:`(B, T)` in
                :math:`\{0, 1\}`, with :math:`-1` for a missing label.
        """
        x = self._check("logits", logits)  # (B, T)
        if not isinstance(targets, Tensor) or targets.shape != logits.shape:
            shape = (tuple(targets.shape) if isinstance(targets, Tensor)
                     else type(targets).__name__)
            raise ValueError(f"Expected 'targets' of shape "
                             f"{tuple(logits.shape)} like 'logits' "
                             f"(got {shape})")
        positive = targets.reshape(-1, self.num_tasks) == 1  # (B, T)
        full = self._max(x)  # (B, T)
        # A finite floor instead of -inf keeps every gradient finite; a
        # positive node always includes itself, so it never wins there.
        floor = torch.finfo(x.dtype).min
        pos = self._max(torch.where(positive, x, floor))  # (B, T)
        return torch.where(positive, pos, full).view(logits.shape)

    @torch.no_grad()
    def violations(self, scores: Tensor, *, atol: float = 1e-6) -> int:
        r"""Counts the (example, edge) pairs whose parent score is below its
        child's by more than :obj:`atol`; works on probabilities or logits."""
        x = self._check("scores", scores)  # (B, T)
        parent = x.index_select(1, self.edge_parent)  # (B, E)
        child = x.index_select(1, self.edge_child)  # (B, E)
        return int((parent < child - atol).sum())

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_tasks={self.num_tasks}, "
                f"num_edges={self.num_edges}, levels={self.num_levels})")
