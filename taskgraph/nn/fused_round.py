r"""One round of message passing as one hand-fused, chunked autograd function.

:func:`message_round` computes, for every example :math:`b`, task :math:`t` and
direction :math:`k` (edge :math:`e` of direction :math:`k(e)` goes from task
:math:`\mathrm{src}(e)` to the row :math:`(t, k)` of its target),

.. math::
    \mathbf{s}_b &= \mathrm{LN}(\mathbf{m}_b) \quad (\text{or } \mathbf{m}_b
        \text{ without normalization}) \\
    \mathbf{u}_{b,s,k} &= \mathbf{M}_k \mathbf{s}_{b,s}, \qquad
    S_{b,t,k} = \sum_{e \to (t,k)} w_{b,e} \\
    \mathbf{p}_{b,t} &= \sum_k \Big(\sum_{e \to (t,k)} w_{b,e}\,
        \mathbf{u}_{b,\mathrm{src}(e),k}\Big) + \mathbf{c}_k S_{b,t,k} \\
    \mathbf{y}_{b,t} &= \mathbf{x}_{b,t} + \mathrm{GELU}(\mathbf{p}_{b,t})

(every task is transformed once per direction, then the transformed sources are
summed along the edges: one dense product and one sparse product), and, with
:math:`\mathbf{g} = \partial L / \partial \mathbf{y}`,
:math:`\mathbf{q} = \mathbf{g} \odot \mathrm{GELU}'(\mathbf{p})` and the
gradient summed back along the edges per (source, direction),
:math:`\mathbf{r}_{b,s,k} = \sum_{e:\, s \to (t,k)} w_{b,e}\, \mathbf{q}_{b,t}`,
the gradients

.. math::
    \frac{\partial L}{\partial \mathbf{x}} = \mathbf{g}, \quad
    \frac{\partial L}{\partial \mathbf{M}_k} = \sum_{b,s} \mathbf{r}_{b,s,k}
        \mathbf{s}_{b,s}^{\top}, \quad
    \frac{\partial L}{\partial \mathbf{s}_{b,s}} = \sum_k \mathbf{M}_k^{\top}
        \mathbf{r}_{b,s,k}, \quad
    \frac{\partial L}{\partial \mathbf{c}_k} = \sum_{b,t} S_{b,t,k}\, \mathbf{q}_{b,t}, \\
    \frac{\partial L}{\partial w_{b,e}} = \big\langle \mathbf{q}_{b,t},
        \mathbf{u}_{b,\mathrm{src}(e),k} \big\rangle
        + \big\langle \mathbf{q}_{b,t}, \mathbf{c}_k \big\rangle
    \quad \text{for } e \to (t, k),

then LayerNorm's own backward for :math:`\mathbf{m}` and its affine parameters.
The sums over edges are block-diagonal sparse products
(:mod:`taskgraph.nn.aggregate`); the weight gradient is a sampled dense-dense
product, so no per-edge copy of the features is ever made.

Cost: three dense products of :math:`(BT, F) \times (F, DF)` size per round (the
transform; :math:`\partial L / \partial \mathbf{M}` and :math:`\partial L / \partial
\mathbf{s}`), because :math:`\mathbf{u}` is kept for the weight gradient (:math:`(B, T,
DF)`, up to :math:`2^{26}` elements; above, it is recomputed: a fourth product).

On the CPU the batch is processed a few examples at a time (about :math:`2^{18}`
elements of :math:`(B, T, F)` per chunk and thread), so the intermediates of a chunk (the
normalized source, the pre-activation before it is stored, the gradients) stay
in cache and are never allocated for the whole batch. Saved for the backward
pass: :math:`\mathbf{m}`, :math:`\mathbf{p}`, LayerNorm's per-row statistics and
:math:`\mathbf{u}` when kept; :math:`\mathbf{s}` is recomputed chunk by chunk.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from taskgraph.errors import ArgumentError
from taskgraph.nn.aggregate import EdgePlan, _edge_dots, _spmm

#: Elements of a (b, T, F) chunk of the batch processed at once by one CPU thread
#: (1 MB of float32); n threads take n^2 times as much, so that each operation still
#: has enough work to share (on one thread, the whole (256, 1,000, 32) batch of a round
#: at once took 1.5x as long as chunks of 8 examples).
_CHUNK_ELEMENTS = 1 << 18


#: The transformed sources u (B, T, D F) are kept for the weight gradient up to this many
#: elements (256 MB of float32), and recomputed in the backward pass above it.
_KEEP_ELEMENTS = 1 << 26


def _chunk_rows(x: Tensor) -> int:
    """Examples per chunk: all of them off the CPU, where kernels want large batches."""
    B, T, C = x.shape
    if x.device.type != "cpu":
        return max(1, B)
    threads = max(1, torch.get_num_threads())
    return max(1, min(B, _CHUNK_ELEMENTS * threads * threads // max(1, T * C)))


def _source_plan(plan: EdgePlan, num_tasks: int, directions: int) -> EdgePlan:
    """The same edges from rows :math:`t D + k` of the targets' gradients to rows
    :math:`s D + k` of the sources, built once per plan."""
    key = ("sources", directions)
    if key not in plan.derived:
        k = plan.dst % directions  # (D * E,) direction of every edge
        plan.derived[key] = EdgePlan(plan.src * directions + k, plan.dst // directions,
                                     num_tasks * directions, num_tasks)
    return plan.derived[key]


def _stacked(lin_weight: Tensor, directions: int) -> Tensor:
    r""":math:`[\mathbf{M}_1; \dots; \mathbf{M}_D]`, (D * F, F), from
    :math:`[\mathbf{M}_1 \cdots \mathbf{M}_D]`, (F, D * F)."""
    C = lin_weight.size(0)
    return lin_weight.view(C, directions, C).transpose(0, 1).reshape(directions * C, C)


def _totals(plan: EdgePlan, weight: Tensor) -> Tensor:
    """:math:`S`: the summed weights of every (task, direction) row, (b, T * D)."""
    return weight.new_zeros(weight.size(0), plan.num_dst).index_add_(1, plan.dst, weight)


class _MessageRound(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, sent: Optional[Tensor], weight: Tensor,
                norm_weight: Optional[Tensor], norm_bias: Optional[Tensor],
                lin_weight: Tensor, lin_bias: Optional[Tensor], plan: EdgePlan,
                normalize: bool, eps: float, keep: bool) -> Tensor:
        # sent is None when x sends itself; keep: save u for the weight gradient
        B, T, C = x.shape
        D = plan.num_dst // T
        shared = weight.size(0) == 1 and B > 1
        source = x if sent is None else sent  # (B, T, F): what is sent
        out, pre = torch.empty_like(x), torch.empty_like(x)  # (B, T, F)
        kept = x.new_empty(B, T, D * C) if keep else None  # u = [M_1 s; ...; M_D s]
        mean = rstd = None
        if normalize:
            mean, rstd = x.new_empty(B, T, 1), x.new_empty(B, T, 1)
        stacked = _stacked(lin_weight, D)  # (D * F, F)
        sources = _source_plan(plan, T, D)
        shared_bias = None
        if shared and lin_bias is not None:  # one bias term for every example: (T, F)
            shared_bias = _totals(plan, weight).view(T, D) @ lin_bias
        step = _chunk_rows(x)
        for b0 in range(0, B, step):
            b1 = min(B, b0 + step)
            n = b1 - b0
            w = weight if shared else weight[b0:b1]  # (1 | n, D * E)
            s = source[b0:b1]  # (n, T, F)
            if normalize:
                s, mu, r = torch.native_layer_norm(s, (C,), norm_weight, norm_bias, eps)
                mean[b0:b1], rstd[b0:b1] = mu, r
            # transform first, u_{s,k} = M_k s_s in row s * D + k, then sum along the edges
            u = (kept[b0:b1].view(n * T, D * C) if keep else None)
            u = torch.mm(s.reshape(n * T, C), stacked.t(), out=u)  # (n * T, D * F)
            p = pre[b0:b1].view(n * T, C)
            torch.addmm(p, sources.matrix(w, batch_size=n), u.view(n * T * D, C), beta=0,
                        out=p)  # (n * T, F)
            if shared_bias is not None:
                p.view(n, T, C).add_(shared_bias)
            elif lin_bias is not None:
                p.addmm_(_totals(plan, w).view(n * T, D), lin_bias)
            torch.add(x[b0:b1], F.gelu(p).view(n, T, C), out=out[b0:b1])
        ctx.save_for_backward(source, weight, norm_weight, norm_bias, lin_weight, lin_bias,
                              pre, mean, rstd, kept)
        ctx.plan, ctx.normalize, ctx.eps, ctx.sends_x = plan, normalize, eps, sent is None
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        sent, weight, norm_weight, norm_bias, lin_weight, lin_bias, pre, mean, rstd, kept = \
            ctx.saved_tensors
        plan: EdgePlan = ctx.plan
        needs = ctx.needs_input_grad
        B, T, C = sent.shape
        D = plan.num_dst // T
        shared = weight.size(0) == 1 and B > 1
        grad = grad.contiguous()  # (B, T, F)
        # x sends itself: dL/dx = g + dL/dm, summed chunk by chunk
        grad_x = torch.empty_like(grad) if ctx.sends_x and needs[0] else None
        grad_sent = torch.empty_like(sent) if needs[1] else None
        grad_w = (torch.zeros_like(weight) if shared else torch.empty_like(weight)) \
            if needs[2] else None
        grad_nw = None if norm_weight is None else torch.zeros_like(norm_weight)
        grad_nb = None if norm_bias is None else torch.zeros_like(norm_bias)
        # the transforms stacked the other way, [M_1; ...; M_D]: (D * F, F), and its gradient
        stacked = _stacked(lin_weight, D)
        grad_stacked = torch.zeros_like(stacked)
        sources = _source_plan(plan, T, D)
        grad_lb = None if lin_bias is None else torch.zeros_like(lin_bias)  # (D, F)
        totals = _totals(plan, weight) if shared and lin_bias is not None else None  # (1, T*D)
        norm_mask = [True, needs[3] and norm_weight is not None,
                     needs[4] and norm_bias is not None]
        step = _chunk_rows(grad)
        for b0 in range(0, B, step):
            b1 = min(B, b0 + step)
            n = b1 - b0
            w = weight if shared else weight[b0:b1]  # (1 | n, D * E)
            m = sent[b0:b1]  # (n, T, F)
            s = m
            if ctx.normalize:  # recomputed in cache: cheaper than keeping it
                s = torch.native_layer_norm(m, (C,), norm_weight, norm_bias, ctx.eps)[0]
            q = torch.ops.aten.gelu_backward(grad[b0:b1].view(n * T, C),
                                             pre[b0:b1].view(n * T, C))  # (n * T, F)
            # r_{u,k} = sum of w q_t over the edges u -> (t, k): one sparse product gives
            # dL/dM_k = sum_u r_{u,k} s_u^T and dL/ds_u = sum_k M_k^T r_{u,k}
            r = _spmm(sources.matrix(w, transpose=True, batch_size=n), q)  # (n * T * D, F)
            r = r.view(n * T, D * C)
            grad_stacked.addmm_(r.t(), s.reshape(n * T, C))
            grad_total = None
            if lin_bias is not None:
                if shared:
                    grad_lb.addmm_(totals.view(T, D).t(), q.view(n, T, C).sum(0))
                else:
                    grad_lb.addmm_(_totals(plan, w).view(n * T, D).t(), q)
                grad_total = torch.mm(q, lin_bias.t()).view(n, T * D)  # dL/dS: (n, T * D)
            if (grad_x is not None or grad_sent is not None or grad_nw is not None
                    or grad_nb is not None):
                grad_s = torch.mm(r, stacked).view(n, T, C)  # (n, T, F)
                if ctx.normalize:
                    gm, gnw, gnb = torch.ops.aten.native_layer_norm_backward(
                        grad_s, m, (C,), mean[b0:b1], rstd[b0:b1], norm_weight, norm_bias,
                        norm_mask)
                    if grad_nw is not None and gnw is not None:
                        grad_nw += gnw
                    if grad_nb is not None and gnb is not None:
                        grad_nb += gnb
                    grad_s = gm
                if grad_x is not None:
                    torch.add(grad[b0:b1], grad_s, out=grad_x[b0:b1])
                if grad_sent is not None:
                    grad_sent[b0:b1] = grad_s
            if grad_w is not None:
                # <q_t, u_{s,k}> for every edge s -> (t, k): u kept, or recomputed
                u = (kept[b0:b1] if kept is not None
                     else torch.mm(s.reshape(n * T, C), stacked.t()))  # (n, T, D * F)
                dots = _edge_dots(sources, w, q.view(n, T, C), u.view(n, T * D, C))
                if grad_total is not None:
                    dots += grad_total.index_select(1, plan.dst)  # (n, D * E)
                if shared:
                    grad_w += dots.sum(dim=0, keepdim=True)
                else:
                    grad_w[b0:b1] = dots
        if grad_x is None and needs[0]:
            grad_x = grad
        grad_lw = grad_stacked.view(D, C, C).transpose(0, 1).reshape(C, D * C)
        return (grad_x, grad_sent, grad_w, grad_nw if needs[3] else None,
                grad_nb if needs[4] else None, grad_lw if needs[5] else None,
                grad_lb if needs[6] else None, None, None, None, None)


def message_round(x: Tensor, sent: Tensor, weight: Tensor, plan: EdgePlan,
                  lin_weight: Tensor, lin_bias: Optional[Tensor] = None, *,
                  norm_weight: Optional[Tensor] = None, norm_bias: Optional[Tensor] = None,
                  normalize: bool = False, eps: float = 1e-5) -> Tensor:
    r"""One round :math:`\mathbf{y} = \mathbf{x} + \mathrm{GELU}(\sum_k \mathbf{M}_k
    \mathbf{a}_k + \mathbf{c}_k S_k)` of the messages :obj:`sent` (see the module
    docstring for the formulas and their gradients).

    Args:
        x (Tensor): The residual, :math:`(B, T, F)`.
        sent (Tensor): What every task sends, :math:`(B, T, F)` (may be :obj:`x`).
        weight (Tensor): Edge weights :math:`(B, D E)` or :math:`(1, D E)`, in the
            order of :obj:`plan`'s edges.
        plan (EdgePlan): Edges from tasks (:math:`S = T`) to (task, direction) rows
            :math:`t D + k` (:math:`R = T D`).
        lin_weight (Tensor): :math:`[\mathbf{M}_1 \cdots \mathbf{M}_D]`, :math:`(F, D F)`.
        lin_bias (Tensor, optional): :math:`\mathbf{c}_k` stacked, :math:`(D, F)`.
        norm_weight (Tensor, optional): LayerNorm's :math:`\gamma`, :math:`(F,)`.
        norm_bias (Tensor, optional): LayerNorm's :math:`\beta`, :math:`(F,)`.
        normalize (bool, optional): Apply LayerNorm to :obj:`sent` first.
            (default: :obj:`False`)
        eps (float, optional): LayerNorm's :math:`\epsilon`. (default: :obj:`1e-5`)

    Returns:
        Tensor: :math:`(B, T, F)`.

    Raises:
        ArgumentError: a shape does not fit the others.

    Example:
        >>> plan = EdgePlan(torch.tensor([0]), torch.tensor([1]), 2, 2)  # 0 -> row (1, 0)
        >>> x = torch.zeros(3, 2, 4)                                      # (B, T, F)
        >>> y = message_round(x, x + 1, torch.ones(1, 1), plan, torch.eye(4))
        >>> y[0].tolist()[1] == [F.gelu(torch.tensor(1.0)).item()] * 4, y[:, 0].abs().sum().item()
        (True, 0.0)
    """
    if x.dim() != 3 or sent.shape != x.shape:
        raise ArgumentError(f"Expected 'x' and 'sent' of one shape (B, T, F) "
                            f"(got {tuple(x.shape)} and {tuple(sent.shape)})")
    B, T, C = x.shape
    if plan.num_src != T or plan.num_dst % max(T, 1) != 0:
        raise ArgumentError(f"Expected a plan from {T} tasks to (task, direction) rows "
                            f"(got {plan.num_src} sources and {plan.num_dst} rows)")
    D = plan.num_dst // T
    if lin_weight.shape != (C, D * C):
        raise ArgumentError(f"Expected 'lin_weight' of shape ({C}, {D * C}) "
                            f"(got {tuple(lin_weight.shape)})")
    if lin_bias is not None and lin_bias.shape != (D, C):
        raise ArgumentError(f"Expected 'lin_bias' of shape ({D}, {C}) "
                            f"(got {tuple(lin_bias.shape)})")
    if weight.dim() != 2 or weight.size(1) != plan.num_edges or weight.size(0) not in (1, B):
        raise ArgumentError(f"Expected 'weight' of shape ({B}, {plan.num_edges}) or "
                            f"(1, {plan.num_edges}) (got {tuple(weight.shape)})")
    if plan.num_edges == 0 or B == 0:
        return x.clone()  # no message: GELU(0) = 0
    sends_x = sent is x
    x = x.contiguous()
    sent = None if sends_x else sent.contiguous()  # None: x sends itself
    weight = weight.to(x.dtype)
    # u, (B, T, D F), is kept for the weight gradient when it is small enough
    keep = (torch.is_grad_enabled() and weight.requires_grad
            and B * T * D * C <= _KEEP_ELEMENTS)
    return _MessageRound.apply(x, sent, weight, norm_weight, norm_bias, lin_weight, lin_bias,
                               plan, bool(normalize), float(eps), keep)
