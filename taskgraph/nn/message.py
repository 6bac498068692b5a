r"""Message passing between per-task embeddings along a task hierarchy."""
from typing import Any, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Identity, LayerNorm, Linear, ModuleDict, Parameter
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax

from taskgraph.errors import ArgumentError
from taskgraph.nn.aggregate import EdgePlan
from taskgraph.nn.fused_round import message_round
from taskgraph.vocabulary import DIRECTIONS as _DIRECTIONS
from taskgraph.vocabulary import MESSAGE_KINDS as _MESSAGES


def _is_compiling() -> bool:
    return bool(torch.compiler.is_compiling())


def _check_conv_args(channels: Any, directions: Any, message: Any,
                     dropout: Any) -> Tuple[str, ...]:
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ArgumentError(f"Expected 'channels' to be a positive int "
                            f"(got {channels!r})")
    if isinstance(directions, str):
        directions = (directions, )
    directions = tuple(directions)
    if (len(directions) == 0 or len(set(directions)) != len(directions)
            or any(d not in _DIRECTIONS for d in directions)):
        raise ArgumentError(f"Expected 'directions' to be a non-empty sequence of "
                            f"distinct values from {_DIRECTIONS} "
                            f"(got {directions!r})")
    if message not in _MESSAGES:
        raise ArgumentError(f"Expected 'message' to be one of {_MESSAGES} "
                            f"(got {message!r})")
    if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ArgumentError(f"Expected 'dropout' to be a float in [0, 1) "
                            f"(got {dropout!r})")
    return directions


class HierarchyConv(MessagePassing):
    r"""One round of message passing along a task hierarchy whose edges are
    stochastic synapses.

    Every example carries :math:`T` task embeddings. Parents send messages
    to their children ("down") and children to their parents ("up"), each
    direction with its own linear transform :math:`\mathbf{M}_{\mathrm{dir}}`.
    Every edge :math:`s \to t` of a direction carries a per-example synapse
    weight :math:`w_{st}` computed elsewhere:

    .. math::
        \mathbf{h}_t' = \mathbf{h}_t + \mathrm{GELU}
        \Big(\sum_{\mathrm{dir}} \sum_{s \in \mathcal{N}_{\mathrm{dir}}(t)}
        c_{st} \, w_{st} \, \mathbf{M}_{\mathrm{dir}} \,
        \mathrm{LayerNorm}(\mathbf{m}_s) \Big)

    where :math:`\mathcal{N}_{\mathrm{down}}(t)` are the parents and
    :math:`\mathcal{N}_{\mathrm{up}}(t)` the children of :math:`t`, and
    :math:`\mathbf{m}_s` is what task :math:`s` sends: its embedding
    :math:`\mathbf{h}_s`, or any other :math:`(B, T, F)` tensor passed as
    :obj:`source` (a model sends what each task's head predicts). The
    normalization acts on what is sent, never on the residual sum, so a round
    whose messages are all zero (every :math:`w_{st} = 0`) is exactly the
    identity: "no message passing" and "messages zeroed" are the same model.
    With :obj:`message="sum"`, :math:`c_{st} = 1 / |\mathcal{N}_{\mathrm{dir}}
    (t)|` (a mean per target and direction, so that a root with thousands of
    children is not swamped). With :obj:`message="attention"`,
    :math:`c_{st} = \alpha_{st}` is a GATv2 attention coefficient, computed
    per example and per direction,

    .. math::
        \alpha_{st} = \underset{s \in \mathcal{N}_{\mathrm{dir}}(t)}
        {\mathrm{softmax}} \Big(\mathbf{a}_{\mathrm{dir}}^{\top}
        \mathrm{LeakyReLU}\big(\mathbf{M}_{\mathrm{dir}} \mathbf{h}_s +
        \mathbf{W}_{\mathrm{dir}} \mathbf{h}_t\big)\Big),

    which sums to one over each node's incoming edges of one direction, so
    no further mean is taken. As in GATv2, the source transform of the score
    is the message transform :math:`\mathbf{M}_{\mathrm{dir}}`.

    All directions run in a single fused :meth:`propagate`. Since every
    :math:`\mathbf{M}_{\mathrm{dir}} \mathbf{x} + \mathbf{b}_{\mathrm{dir}}` is
    affine, the bias is taken out of the sum
    (:math:`\mathbf{v}_s` is :math:`\mathrm{LayerNorm}(\mathbf{m}_s)`, or
    :math:`\mathbf{m}_s` itself when the norm is elsewhere),

    .. math::
        \sum_{s} c_{st} w_{st} (\mathbf{M}_k \mathbf{v}_s + \mathbf{b}_k)
        = \sum_{s} c_{st} w_{st} \mathbf{M}_k \mathbf{v}_s
        + \mathbf{b}_k \sum_{s} c_{st} w_{st},

    the same function computed as one dense product of every task with
    :math:`[\mathbf{M}_1; \cdots; \mathbf{M}_D]` into a :math:`(B, T, D \cdot F)`
    tensor, then one block-diagonal sparse product per batch over all edges of all
    directions. The
    normalization, the transforms, the sums, GELU and the residual run as one
    hand-fused autograd function, a few examples at a time
    (:func:`~taskgraph.nn.fused_round.message_round`), which never keeps a
    :math:`(B, D \cdot E, F)` message tensor and whose gradients of the weights
    are one sampled dense-dense product. Dropout drops whole messages,
    independently per example.

    Args:
        channels (int): Size :math:`F` of each task embedding.
        directions (Sequence[str], optional): The enabled directions, any of
            :obj:`"down"` (parent to child) and :obj:`"up"` (child to parent).
            Their order fixes the layout of :obj:`edge_weight`.
            (default: :obj:`("down", "up")`)
        message (str, optional): :obj:`"sum"` (mean of weighted messages) or
            :obj:`"attention"` (GATv2 attention). (default: :obj:`"sum"`)
        dropout (float, optional): Dropout probability applied to every
            message. (default: :obj:`0.0`)
        negative_slope (float, optional): LeakyReLU slope of the attention
            score. (default: :obj:`0.2`)
        norm (bool or str, optional): Where the LayerNorm goes:
            :obj:`"source"` (or :obj:`True`): on what is sent, as in the formula;
            :obj:`"residual"`: on the residual sum,
            :math:`\mathrm{LayerNorm}(\mathbf{h}_t + \mathrm{GELU}(\dots))`
            (models saved before taskgraph 0.2; a round with no messages is then
            not the identity); :obj:`False`: none. (default: :obj:`"source"`)
        bias (bool, optional): If :obj:`False`, the message transforms have
            no bias. (default: :obj:`True`)

    Shapes:
        - **input:** task embeddings :math:`(B, T, F)` (or :math:`(T, F)`),
          edge indices :math:`(2, E)` parent :math:`\to` child, synapse
          weights :math:`(B, D \cdot E)` or :math:`(D \cdot E)` or
          :obj:`None` (all ones). Column :math:`k E + e` is the weight of edge
          :math:`e` in direction :obj:`directions[k]`, e.g. for the default
          :obj:`("down", "up")`: the down weights of edges :math:`0..E-1`,
          then the up weights of edges :math:`0..E-1`.
        - **output:** :math:`(B, T, F)` (or :math:`(T, F)`); with
          :obj:`return_attention_weights=True` also :math:`\alpha` of shape
          :math:`(B, D \cdot E)` in the layout of :obj:`edge_weight`.

    Example:
        >>> conv = HierarchyConv(8)
        >>> x = torch.randn(4, 3, 8)                    # (B, T, F)
        >>> edge_index = torch.tensor([[0, 0], [1, 2]])  # 0 -> 1, 0 -> 2
        >>> edge_weight = torch.rand(4, 2 * 2)          # (B, D * E)
        >>> conv(x, edge_index, edge_weight).shape
        torch.Size([4, 3, 8])
        >>> conv
        HierarchyConv(8, directions=('down', 'up'), message='sum')
    """
    def __init__(
        self,
        channels: int,
        *,
        directions: Sequence[str] = _DIRECTIONS,
        message: str = "sum",
        dropout: float = 0.0,
        negative_slope: float = 0.2,
        norm: Union[bool, str] = "source",
        bias: bool = True,
    ) -> None:
        directions = _check_conv_args(channels, directions, message, dropout)
        if norm is True:
            norm = "source"
        if norm not in (False, "source", "residual"):
            raise ArgumentError(f"Expected 'norm' to be 'source', 'residual' or False "
                                f"(got {norm!r})")
        # "sum" folds the mean over each (direction, target) group into the
        # edge weights; attention coefficients are already normalized.
        super().__init__(aggr="add", node_dim=-2)
        self.channels = channels
        self.directions = directions
        self.message_type = message
        self.dropout = float(dropout)
        self.negative_slope = float(negative_slope)
        self.norm_at = norm or None  # "source", "residual" or None

        self.lin = ModuleDict(
            {d: Linear(channels, channels, bias=bias)
             for d in directions})
        if message == "attention":
            self.lin_att = ModuleDict(
                {d: Linear(channels, channels, bias=False)
                 for d in directions})
            self.att = Parameter(torch.empty(len(directions), channels))
        else:
            self.lin_att = None
            self.register_parameter("att", None)
        self.norm = LayerNorm(channels) if norm else Identity()

        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for lin in self.lin.values():
            lin.reset_parameters()
        if self.lin_att is not None:
            for lin in self.lin_att.values():
                lin.reset_parameters()
        if self.att is not None:
            torch.nn.init.xavier_uniform_(self.att)
        if isinstance(self.norm, LayerNorm):
            self.norm.reset_parameters()

    def expand_edges(self, edge_index: Tensor, num_tasks: int) -> Tensor:
        r"""Returns the :math:`(2, D \cdot E)` edges of all directions, edge
        :math:`e` of direction :math:`k` in column :math:`k E + e`: row 0
        indexes the rows :math:`s D + k` of the stacked transformed sources
        :math:`(B, T \cdot D, F)`, row 1 the (direction, target) group
        :math:`k T + t` over which means and attention softmaxes are taken."""
        parent, child = edge_index[0], edge_index[1]  # (E,), (E,)
        D = len(self.directions)
        src, group = [], []
        for k, direction in enumerate(self.directions):
            s, t = (parent, child) if direction == "down" else (child, parent)
            src.append(s * D + k)
            group.append(t + k * num_tasks)
        return torch.stack([torch.cat(src), torch.cat(group)])  # (2, D * E)

    def plan(self, edge_index: Tensor, num_tasks: int) -> EdgePlan:
        r"""The sorted sparse structure of one forward pass (reusable by every
        round that reads the same edges); :obj:`edge_index` is checked. Edge
        :math:`e` of direction :math:`k` (column :math:`k E + e` of the weights)
        goes from task :math:`s` to row :math:`t D + k` of the aggregate: the
        (target, direction) group over which means and attention softmaxes are
        taken."""
        edge_index = self._check_edge_index(edge_index, num_tasks)
        parent, child = edge_index[0], edge_index[1]  # (E,), (E,)
        D = len(self.directions)
        src, dst = [], []
        for k, direction in enumerate(self.directions):
            s, t = (parent, child) if direction == "down" else (child, parent)
            src.append(s)
            dst.append(t * D + k)
        return EdgePlan(torch.cat(src), torch.cat(dst), num_tasks, num_tasks * D)

    def forward(
        self,
        x: Tensor,
        edge_index: Union[Tensor, EdgePlan],
        edge_weight: Optional[Tensor] = None,
        *,
        source: Optional[Tensor] = None,
        return_attention_weights: bool = False,
    ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        squeeze = x.dim() == 2
        if squeeze:
            x = x.unsqueeze(0)  # (1, T, F)
            source = None if source is None else source.unsqueeze(0)
        if x.dim() != 3 or x.size(-1) != self.channels:
            raise ArgumentError(f"Expected 'x' of shape (B, T, {self.channels}) "
                                f"(got {tuple(x.shape)})")
        if source is not None and source.shape != x.shape:
            raise ArgumentError(f"Expected 'source' of the shape of 'x', {tuple(x.shape)} "
                                f"(got {tuple(source.shape)})")
        B, T, C = x.shape
        D = len(self.directions)
        plan = edge_index if isinstance(edge_index, EdgePlan) else self.plan(edge_index, T)
        if plan.num_src != T or plan.num_dst != D * T:
            raise ArgumentError(f"Expected an edge plan over {T} tasks and {D} directions "
                                f"(got one over {plan.num_src} tasks and "
                                f"{plan.num_dst // max(plan.num_src, 1)} directions)")
        DE = plan.num_edges
        weight = self._check_edge_weight(edge_weight, B, DE)  # (B|1, D*E)
        if return_attention_weights and self.message_type != "attention":
            raise ArgumentError("Expected message='attention' when asking for "
                                f"attention weights (got "
                                f"message={self.message_type!r})")

        sent = x if source is None else source  # (B, T, F)
        alpha: Optional[Tensor] = None
        if self.lin_att is not None:
            normed = self.norm(sent) if self.norm_at == "source" else sent  # (B, T, F)
            alpha = self._attention(x, normed, plan)  # (B, D * E)
            coef = alpha
        else:
            coef = plan.inv_degree.to(x.dtype).unsqueeze(0)  # (1, D * E): the mean
        weight = coef if weight is None else weight * coef  # (B|1, D * E)
        if self.training and self.dropout > 0:
            # Drops whole messages, independently per example.
            weight = F.dropout(weight.expand(B, -1), p=self.dropout)  # (B, D * E)

        out = self.propagate(plan.adjacency, x=x, sent=sent, weight=weight, plan=plan)
        if self.norm_at == "residual":
            out = self.norm(out)
        if squeeze:
            out = out.squeeze(0)
        if return_attention_weights:
            return out, alpha
        return out

    @staticmethod
    def _stacked(x: Tensor, lins: ModuleDict) -> Tensor:
        """All transforms of :obj:`lins` in one product: (B, T, F) -> (B, T, D * F)."""
        weights = [lin.weight for lin in lins.values()]
        biases = [lin.bias for lin in lins.values()]
        bias = None if biases[0] is None else torch.cat(biases)
        return F.linear(x, torch.cat(weights), bias)

    def _attention(self, x: Tensor, sent: Tensor, plan: EdgePlan) -> Tensor:
        B, T, C = x.shape
        D = len(self.directions)
        h = self._stacked(sent, self.lin).view(B, T * D, C)  # row s * D + k: M_k m_s
        q = self._stacked(x, self.lin_att).view(B, T * D, C)  # row t * D + k: W_k h_t
        k = plan.dst % D  # (D * E,) direction of every edge
        e = F.leaky_relu(h.index_select(1, plan.src * D + k) + q.index_select(1, plan.dst),
                         self.negative_slope)  # (B, D * E, F)
        e = e.view(B, D, -1, C) * self.att.view(1, D, 1, C)  # (B, D, E, F)
        score = e.sum(dim=-1).view(B, -1)  # (B, D * E)
        # Normalized over each node's incoming edges of one direction, per example.
        return softmax(score, plan.dst, num_nodes=D * T, dim=-1)  # (B, D * E)

    def message_and_aggregate(self, adj_t: Tensor, x: Tensor, sent: Tensor, weight: Tensor,
                              plan: EdgePlan) -> Tensor:
        # Fused: normalization of what is sent, the weighted sums over all edges (a
        # block-diagonal sparse product per batch), the transforms, GELU and the residual
        # in one chunked pass (taskgraph.nn.fused_round); adj_t is plan.adjacency.
        lins = list(self.lin.values())
        lin_weight = torch.cat([lin.weight for lin in lins], dim=1)  # (F, D * F)
        lin_bias = None if lins[0].bias is None else torch.stack([lin.bias for lin in lins])
        at_source = self.norm_at == "source"
        return message_round(x, sent, weight, plan, lin_weight, lin_bias,
                             norm_weight=self.norm.weight if at_source else None,
                             norm_bias=self.norm.bias if at_source else None,
                             normalize=at_source,
                             eps=self.norm.eps if at_source else 1e-5)  # (B, T, F)

    def _check_edge_index(self, edge_index: Tensor, num_tasks: int) -> Tensor:
        if (not isinstance(edge_index, Tensor) or edge_index.dim() != 2
                or edge_index.size(0) != 2):
            shape = (tuple(edge_index.shape) if isinstance(edge_index, Tensor)
                     else type(edge_index).__name__)
            raise ArgumentError(f"Expected 'edge_index' of shape (2, E) "
                                f"(got {shape})")
        if edge_index.is_floating_point() or edge_index.is_complex():
            raise ArgumentError(f"Expected 'edge_index' of an integer dtype "
                                f"(got {edge_index.dtype})")
        edge_index = edge_index.long()
        if not _is_compiling() and edge_index.numel() > 0:
            low, high = int(edge_index.min()), int(edge_index.max())
            if low < 0 or high >= num_tasks:
                raise ArgumentError(f"Expected 'edge_index' entries in "
                                    f"[0, {num_tasks}) (got values in "
                                    f"[{low}, {high}])")
        return edge_index

    def _check_edge_weight(self, edge_weight: Optional[Tensor], B: int,
                           num_weights: int) -> Optional[Tensor]:
        if edge_weight is None:
            return None
        if edge_weight.dim() == 1:
            edge_weight = edge_weight.unsqueeze(0)  # (1, D * E)
        if (edge_weight.dim() != 2 or edge_weight.size(1) != num_weights
                or edge_weight.size(0) not in (1, B)):
            raise ArgumentError(f"Expected 'edge_weight' of shape ({B}, "
                                f"{num_weights}) or ({num_weights},), i.e. "
                                f"(B, D * E) with D={len(self.directions)} "
                                f"directions (got {tuple(edge_weight.shape)})")
        return edge_weight

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.channels}, "
                f"directions={self.directions!r}, "
                f"message={self.message_type!r})")
