r"""A stack of message-passing rounds along a task hierarchy (:class:`HierarchyGNN`)."""
from typing import Any, Callable, Optional, Tuple, Union

import torch
from torch import Tensor
from torch.nn import ModuleList
from torch.utils.checkpoint import checkpoint

from taskgraph.errors import ArgumentError
from taskgraph.nn.aggregate import EdgePlan
from taskgraph.nn.message import HierarchyConv, _check_conv_args, _is_compiling
from taskgraph.vocabulary import DIRECTIONS as _DIRECTIONS

#: Above this many task-embedding elements (B * T * F; 512 MB in float32) a round's
#: activations are recomputed in the backward pass instead of kept. A fused round keeps
#: two (B, T, F) tensors, so below this the recomputation costs more time than the
#: memory it saves is worth (100,000 tasks, F = 16, B = 32: the step is faster, and its
#: peak memory lower, without it).
_RECOMPUTE_ELEMENTS = 1 << 27


class HierarchyGNN(torch.nn.Module):
    r"""A stack of :obj:`rounds` :class:`HierarchyConv` layers (no weight
    sharing), all reading the same edges and synapse weights:

    .. math::
        \mathbf{H}^{l+1} = \mathrm{HierarchyConv}_l(\mathbf{H}^{l},
        \mathcal{E}, \mathbf{w}), \qquad l = 0, \dots, L - 1.

    After :math:`L` rounds a task has heard from every task within :math:`L`
    hops along the enabled directions. :obj:`rounds=0` is the identity.
    When the embeddings of a batch exceed :math:`2^{27}` elements (e.g.
    100,000 tasks, :math:`F = 16`, :math:`B = 128`), each round is
    checkpointed: only its input is kept for the backward pass, where the
    round is run again.

    Args:
        channels (int): Size :math:`F` of each task embedding.
        rounds (int): Number :math:`L` of message passing rounds.
        **conv_kwargs: Keyword arguments of :class:`HierarchyConv`
            (:obj:`directions`, :obj:`message`, :obj:`dropout`,
            :obj:`negative_slope`, :obj:`norm`, :obj:`bias`).

    Shapes:
        - **input:** :math:`(B, T, F)`, :math:`(2, E)`, :math:`(B, D \cdot E)`
          or :math:`(D \cdot E)` or :obj:`None`, as in :class:`HierarchyConv`.
        - **output:** :math:`(B, T, F)`.

    Example:
        >>> gnn = HierarchyGNN(8, rounds=2, directions=("down",))
        >>> x = torch.randn(4, 3, 8)                    # (B, T, F)
        >>> edge_index = torch.tensor([[0, 1], [1, 2]])  # 0 -> 1 -> 2
        >>> gnn(x, edge_index, torch.ones(4, 2)).shape
        torch.Size([4, 3, 8])
        >>> gnn
        HierarchyGNN(8, rounds=2, directions=('down',), message='sum')
    """
    def __init__(self, channels: int, rounds: int, **conv_kwargs: Any) -> None:
        super().__init__()
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
            raise ArgumentError(f"Expected 'rounds' to be a non-negative int "
                                f"(got {rounds!r})")
        self.channels = channels
        self.rounds = rounds
        self.conv_kwargs = dict(conv_kwargs)
        self.convs = ModuleList(
            [HierarchyConv(channels, **conv_kwargs) for _ in range(rounds)])
        # the convs check their arguments; with no round, check them here
        self.directions = (self.convs[0].directions if rounds else _check_conv_args(
            channels, conv_kwargs.get("directions", _DIRECTIONS),
            conv_kwargs.get("message", "sum"), conv_kwargs.get("dropout", 0.0)))
        self.message_type = conv_kwargs.get("message", "sum")
        # (edge_index, its version, number of tasks, plan) of the last forward pass
        self._plan_cache: Optional[Tuple[Tensor, int, int, EdgePlan]] = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()

    def forward(self, x: Tensor, edge_index: Union[Tensor, EdgePlan],
                edge_weight: Optional[Tensor] = None, *,
                source: Optional[Callable[[Tensor], Tensor]] = None) -> Tensor:
        """``source``: a function of a round's input :math:`(B, T, F)` giving what each
        task sends in that round, :math:`(B, T, F)` (default: the input itself)."""
        if not self.convs:
            return x
        # The edges are sorted once and shared by every round (and every call).
        plan = (edge_index if isinstance(edge_index, EdgePlan)
                else self.plan(edge_index, x.size(-2)))
        # Rounds over very large batches keep only their input for the backward pass
        # and recompute the rest (2x less activation memory per round).
        recompute = (torch.is_grad_enabled() and x.requires_grad
                     and x.numel() >= _RECOMPUTE_ELEMENTS and not _is_compiling())
        for conv in self.convs:
            step = _Round(conv, plan, edge_weight, source)
            x = checkpoint(step, x, use_reentrant=False) if recompute else step(x)  # (B, T, F)
        return x

    def plan(self, edge_index: Tensor, num_tasks: int) -> EdgePlan:
        """The :class:`~taskgraph.nn.aggregate.EdgePlan` of :obj:`edge_index`, built once:
        a later call with the same tensor, unchanged (same ``_version``), returns the
        same plan, with the sparse indices of every batch size it has seen."""
        cached = self._plan_cache
        if (cached is not None and cached[0] is edge_index
                and cached[1] == edge_index._version and cached[2] == num_tasks):
            return cached[3]
        plan = self.convs[0].plan(edge_index, num_tasks)
        if not _is_compiling():
            self._plan_cache = (edge_index, edge_index._version, num_tasks, plan)
        return plan

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_plan_cache"] = None  # rebuilt on the first call; never pickled
        return state

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.channels}, "
                f"rounds={self.rounds}, directions={self.directions!r}, "
                f"message={self.message_type!r})")


class _Round:
    """One round as a function of its input alone (what ``checkpoint`` recomputes)."""

    def __init__(self, conv: HierarchyConv, plan: EdgePlan, weight: Optional[Tensor],
                 source: Optional[Callable[[Tensor], Tensor]]) -> None:
        self.conv, self.plan, self.weight, self.source = conv, plan, weight, source

    def __call__(self, x: Tensor) -> Tensor:
        sent = None if self.source is None else self.source(x)  # (B, T, F)
        return self.conv(x, self.plan, self.weight, source=sent)  # (B, T, F)
