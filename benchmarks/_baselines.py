"""Reference implementations the benchmarks compare taskgraph against.

- :class:`NaiveTaskGraph`: the taskgraph model's maths with one ``nn.Linear`` per task
  and Python loops over tasks and edges;
- :func:`dense_max` with :func:`descendant_matrix`: C-HMCNN's dense coherence constraint;
- :class:`SmallCNN`: a small image encoder for 1x28x28 inputs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["NaiveTaskGraph", "descendant_matrix", "dense_max", "SmallCNN"]


class NaiveTaskGraph(nn.Module):
    r"""The taskgraph maths written task by task and edge by edge.

    One ``nn.Linear`` projection and one ``nn.Linear`` head per task (``nn.ModuleList``),
    and, per round and direction, a Python loop over every task's in-neighbours:

    .. math::
        H^0_t = W_t z + b_t + e_t, \quad
        H^{l+1}_t = H^l_t + \mathrm{GELU}\Big(\sum_{dir}
        \tfrac{1}{|N_{dir}(t)|} \sum_{s \in N_{dir}(t)} w_{st}\,
        \big(M^l_{dir} \mathrm{LN}(H^l_s) + c^l_{dir}\big)\Big)

    (``norm="source"``, the default model), or with ``norm="residual"`` (models saved
    before the normalization moved to what is sent)
    :math:`H^{l+1}_t = \mathrm{LN}(H^l_t + \mathrm{GELU}(\sum_{dir} \dots M^l_{dir} H^l_s
    \dots))`, with per-example gaussian synapses
    :math:`w = \mu + \mathrm{softplus}(\rho)\,\epsilon`.
    Operations shared by all tasks (the message transform, GELU, LayerNorm) run once on
    the stacked ``(B, T, F)`` tensor, and per-task tensors are taken with ``unbind``
    (whose backward is one ``stack``), so that the loops cost what they must and no more.
    """

    def __init__(self, num_tasks: int, edges: list[tuple[int, int]], *, in_features: int,
                 hidden: int, task_dim: int, rounds: int,
                 directions: tuple[str, ...] = ("down", "up"), syn_mean: float = 1.0,
                 syn_std: float = 0.1, prior_std: float = 1.0, norm: str = "source") -> None:
        super().__init__()
        if norm not in ("source", "residual"):
            raise ValueError(f"norm must be 'source' or 'residual', got {norm!r}")
        T, E, D = num_tasks, len(edges), len(directions)
        self.norm = norm
        self.num_tasks, self.num_edges = T, E
        self.directions, self.rounds = tuple(directions), rounds
        self.encoder = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU())
        self.proj = nn.ModuleList(nn.Linear(hidden, task_dim) for _ in range(T))
        self.task_embedding = nn.Parameter(torch.randn(T, task_dim) * 0.02)  # (T, F)
        self.lins = nn.ModuleList(
            nn.ModuleDict({d: nn.Linear(task_dim, task_dim) for d in directions})
            for _ in range(rounds))
        self.norms = nn.ModuleList(nn.LayerNorm(task_dim) for _ in range(rounds))
        self.heads = nn.ModuleList(nn.Linear(task_dim, 1) for _ in range(T))
        self.mu = nn.Parameter(torch.full((D * E,), float(syn_mean)))  # (D*E,)
        self.rho = nn.Parameter(torch.full((D * E,), math.log(math.expm1(syn_std))))
        self.prior_mean, self.prior_std = float(syn_mean), float(prior_std)
        # inbox[k][t]: the (weight column, source task) pairs of task t in direction k
        self.inbox: list[list[list[tuple[int, int]]]] = []
        for k, d in enumerate(directions):
            lists: list[list[tuple[int, int]]] = [[] for _ in range(T)]
            for e, (p, c) in enumerate(edges):
                s, t = (p, c) if d == "down" else (c, p)
                lists[t].append((k * E + e, s))
            self.inbox.append(lists)

    @torch.no_grad()
    def load_from(self, model) -> "NaiveTaskGraph":
        """Copy the weights of a compiled taskgraph model (same hierarchy and sizes)."""
        groups = model.layout.groups
        if (len(groups) != 1 or groups[0].kind != "binary"
                or list(groups[0].tasks) != list(range(self.num_tasks))):
            raise ValueError("NaiveTaskGraph mirrors models of binary tasks only")
        if model.gnn is not None and model.config.message_norm != self.norm:
            raise ValueError(f"the model normalizes at {model.config.message_norm!r}, "
                             f"this baseline at {self.norm!r}")
        self.encoder[0].load_state_dict(model.encoder.layers[0].state_dict())
        for t in range(self.num_tasks):
            self.proj[t].weight.copy_(model.projections.task_weight()[t].T)
            self.proj[t].bias.copy_(model.projections.bias[t])
            self.heads[t].weight.copy_(model.heads[0].weight[t].T)
            self.heads[t].bias.copy_(model.heads[0].bias[t])
        self.task_embedding.copy_(model.task_embedding)
        for r, conv in enumerate(model.gnn.convs if model.gnn is not None else []):
            for d in self.directions:
                self.lins[r][d].load_state_dict(conv.lin[d].state_dict())
            self.norms[r].load_state_dict(conv.norm.state_dict())
        if model.edge_synapses is not None:
            self.mu.copy_(model.edge_synapses.mu)
            self.rho.copy_(model.edge_synapses.rho)
        return self

    def forward(self, x: Tensor, sample: bool | None = None) -> Tensor:
        sample = self.training if sample is None else sample
        z = self.encoder(x)  # (B, D)
        h = torch.stack([self.proj[t](z) for t in range(self.num_tasks)], 1)  # (B, T, F)
        h = h + self.task_embedding
        B, _, width = h.shape
        if sample:  # one synapse sample per example and edge
            w = self.mu + F.softplus(self.rho) * torch.randn(B, self.mu.numel())  # (B, D*E)
        else:
            w = self.mu.expand(B, -1)
        w_cols = w.unbind(1)  # D*E x (B,)
        zero = h.new_zeros(B, width)
        for r in range(self.rounds):
            total: list[Tensor | None] = [None] * self.num_tasks
            sent = self.norms[r](h) if self.norm == "source" else h  # (B, T, F)
            for k, d in enumerate(self.directions):
                msg = self.lins[r][d](sent).unbind(1)  # T x (B, F)
                for t in range(self.num_tasks):
                    parts = [w_cols[col].unsqueeze(1) * msg[s] for col, s in self.inbox[k][t]]
                    if not parts:
                        continue
                    mean = parts[0] if len(parts) == 1 else torch.stack(parts).mean(0)
                    total[t] = mean if total[t] is None else total[t] + mean
            agg = torch.stack([zero if a is None else a for a in total], 1)  # (B, T, F)
            h = h + F.gelu(agg)
            if self.norm == "residual":
                h = self.norms[r](h)
        hs = h.unbind(1)
        return torch.cat([self.heads[t](hs[t]) for t in range(self.num_tasks)], 1)  # (B, T)

    def kl(self) -> Tensor:
        sigma = F.softplus(self.rho)
        return (math.log(self.prior_std) - torch.log(sigma)
                + (sigma ** 2 + (self.mu - self.prior_mean) ** 2) / (2 * self.prior_std ** 2)
                - 0.5).sum()

    def loss(self, logits: Tensor, targets: Tensor, *, dataset_size: int) -> Tensor:
        """taskgraph's objective with every label known and unit task weights:
        ``(sum_b sum_t BCE_bt / B + KL / N) / T``, i.e. the mean BCE + KL / (N T)."""
        return (F.binary_cross_entropy_with_logits(logits, targets)
                + self.kl() / (dataset_size * self.num_tasks))



def descendant_matrix(num_nodes: int, edges: list[tuple[int, int]]) -> np.ndarray:
    """R[i, j] = 1 if j is i or a descendant of i: (T, T) bool, in O(T * E / 8) bytes ops."""
    children: list[list[int]] = [[] for _ in range(num_nodes)]
    indeg = [0] * num_nodes
    for p, c in edges:
        children[p].append(c)
        indeg[c] += 1
    order, stack = [], [v for v in range(num_nodes) if indeg[v] == 0]
    while stack:
        v = stack.pop()
        order.append(v)
        for c in children[v]:
            indeg[c] -= 1
            if indeg[c] == 0:
                stack.append(c)
    R = np.eye(num_nodes, dtype=bool)
    for v in reversed(order):  # children before parents
        for c in children[v]:
            R[v] |= R[c]
    return R


def dense_max(probs: Tensor, R: Tensor) -> Tensor:
    """C-HMCNN's constraint: max over descendants-or-self through a dense (B, T, T) product."""
    return (probs.unsqueeze(1) * R.unsqueeze(0)).max(-1).values  # (B, T)


class SmallCNN(nn.Module):
    """Three conv layers for 1x28x28 images -> a 128-wide representation."""

    def __init__(self, out_features: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 32 x 14 x 14
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 64 x 7 x 7
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),                   # 64 x 7 x 7
            nn.Flatten(), nn.Linear(64 * 7 * 7, out_features), nn.ReLU())
        self.out_features = out_features

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (B, out_features)
