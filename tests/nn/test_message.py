import pytest
import torch
import torch.nn.functional as F

from taskgraph.nn.gnn import HierarchyGNN
from taskgraph.nn.message import HierarchyConv

# 0 -> 1, 0 -> 2, 1 -> 3, 2 -> 3 (3 has two parents), 3 -> 4, 5 isolated.
EDGE_INDEX = torch.tensor([[0, 0, 1, 2, 3], [1, 2, 3, 3, 4]])
T, E, C = 6, 5, 8

DIRECTIONS = [("down", ), ("up", ), ("down", "up"), ("up", "down")]


def _x(B=3, seed=0):
    return torch.randn(B, T, C, generator=torch.Generator().manual_seed(seed))


def _w(B, D, seed=1):
    return torch.rand(B, D * E, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("message", ["sum", "attention"])
@pytest.mark.parametrize("directions", DIRECTIONS)
def test_shapes(message, directions):
    conv = HierarchyConv(C, directions=directions, message=message)
    D = len(directions)
    x = _x(B=4)
    assert conv(x, EDGE_INDEX, _w(4, D)).shape == (4, T, C)
    assert conv(x, EDGE_INDEX, _w(1, D)[0]).shape == (4, T, C)  # (D * E,)
    assert conv(x, EDGE_INDEX).shape == (4, T, C)  # all weights one
    assert conv(x[0], EDGE_INDEX, _w(1, D)[0]).shape == (T, C)  # no batch
    gnn = HierarchyGNN(C, 3, directions=directions, message=message)
    assert gnn(x, EDGE_INDEX, _w(4, D)).shape == (4, T, C)


@pytest.mark.parametrize("message", ["sum", "attention"])
def test_no_edges_is_the_identity(message):
    """The normalization acts on what is sent, not on the residual sum: a round with
    no messages returns its input unchanged."""
    conv = HierarchyConv(C, message=message)
    x = _x()
    empty = torch.empty(2, 0, dtype=torch.long)
    torch.testing.assert_close(conv(x, empty, torch.empty(3, 0)), x)
    torch.testing.assert_close(conv(x, empty), x)
    no_norm = HierarchyConv(C, message=message, norm=False)
    torch.testing.assert_close(no_norm(x, empty), x)


@pytest.mark.parametrize("message", ["sum", "attention"])
def test_gradients_reach_transforms_and_weights(message):
    conv = HierarchyConv(C, message=message)
    w = _w(3, 2).requires_grad_()
    conv(_x(), EDGE_INDEX, w).pow(2).sum().backward()
    for direction in ("down", "up"):
        assert conv.lin[direction].weight.grad.abs().sum() > 0
    assert w.grad[:, :E].abs().sum() > 0  # down block
    assert w.grad[:, E:].abs().sum() > 0  # up block
    if message == "attention":
        assert conv.att.grad.abs().sum() > 0
        for direction in ("down", "up"):
            assert conv.lin_att[direction].weight.grad.abs().sum() > 0


def _changed(gnn, x, node):
    y = x.clone()
    y[:, node] += torch.randn(y.shape[0], C)  # not a constant shift
    diff = (gnn(y, EDGE_INDEX) - gnn(x, EDGE_INDEX)).abs().amax(dim=(0, 2))
    return {t for t in range(T) if diff[t] > 1e-6}


@pytest.mark.parametrize("message", ["sum", "attention"])
def test_down_messages_only_reach_descendants(message):
    x = _x()
    gnn = HierarchyGNN(C, 2, directions=("down", ), message=message).eval()
    assert _changed(gnn, x, 0) == {0, 1, 2, 3}  # 4 is 3 hops away
    assert _changed(gnn, x, 3) == {3, 4}  # never reaches parents 1, 2, 0
    assert _changed(gnn, x, 4) == {4}
    gnn = HierarchyGNN(C, 3, directions=("down", ), message=message).eval()
    assert _changed(gnn, x, 0) == {0, 1, 2, 3, 4}
    up = HierarchyGNN(C, 2, directions=("up", ), message=message).eval()
    assert _changed(up, x, 4) == {4, 3, 1, 2}
    assert _changed(up, x, 1) == {1, 0}
    both = HierarchyGNN(C, 1, message=message).eval()
    assert _changed(both, x, 3) == {1, 2, 3, 4}
    assert 5 not in _changed(HierarchyGNN(C, 4, message=message), x, 0)


@pytest.mark.parametrize("message", ["sum", "attention"])
def test_zero_weights_mean_no_messages(message):
    conv = HierarchyConv(C, message=message)
    x = _x()
    w = _w(3, 2)
    w[1] = 0.0
    out = conv(x, EDGE_INDEX, w)
    torch.testing.assert_close(out[1], x[1])  # zeroed messages: exactly rounds=0
    assert not torch.allclose(out[0], x[0])
    assert not torch.allclose(out[2], x[2])


@pytest.mark.parametrize("directions", DIRECTIONS)
def test_attention_sums_to_one_per_target_and_direction(directions):
    conv = HierarchyConv(C, directions=directions, message="attention")
    D = len(directions)
    out, alpha = conv(_x(), EDGE_INDEX, _w(3, D),
                      return_attention_weights=True)
    assert out.shape == (3, T, C) and alpha.shape == (3, D * E)
    assert (alpha > 0).all()
    groups = conv.expand_edges(EDGE_INDEX, T)[1]  # (D * E,)
    total = torch.zeros(3, D * T).index_add_(1, groups, alpha)
    has_edges = torch.zeros(D * T).index_add_(0, groups, torch.ones(D * E))
    torch.testing.assert_close(total[:, has_edges > 0],
                               torch.ones(3, int((has_edges > 0).sum())))
    # Node 3 has two parents: its down coefficients differ per example.
    if directions == ("down", ):
        assert not torch.allclose(alpha[0, 2:4], alpha[1, 2:4])


def _reference(conv, x, w, source=None):
    """Slow loop over examples, directions and edges."""
    B = x.size(0)
    msg = torch.zeros_like(x)
    sent = conv.norm(x if source is None else source)
    for b in range(B):
        for k, direction in enumerate(conv.directions):
            pairs = [(int(p), int(c)) for p, c in EDGE_INDEX.t()]
            if direction == "up":
                pairs = [(c, p) for p, c in pairs]
            lin = conv.lin[direction]
            scores = {}
            if conv.message_type == "attention":
                q = conv.lin_att[direction]
                for e, (s, t) in enumerate(pairs):
                    h = F.leaky_relu(lin(sent[b, s]) + q(x[b, t]), 0.2)
                    scores[e] = (conv.att[k] * h).sum()
            for e, (s, t) in enumerate(pairs):
                incoming = [f for f, (_, u) in enumerate(pairs) if u == t]
                if conv.message_type == "sum":
                    coef = 1.0 / len(incoming)
                else:
                    z = torch.stack([scores[f] for f in incoming])
                    coef = torch.softmax(z, 0)[incoming.index(e)]
                msg[b, t] = msg[b, t] + coef * w[b, k * E + e] * lin(sent[b, s])
    return x + F.gelu(msg)


@pytest.mark.parametrize("message", ["sum", "attention"])
@pytest.mark.parametrize("directions", DIRECTIONS)
def test_matches_slow_reference(message, directions):
    conv = HierarchyConv(C, directions=directions, message=message)
    with torch.no_grad():  # a non-trivial LayerNorm
        conv.norm.weight.uniform_(0.5, 1.5)
        conv.norm.bias.uniform_(-0.5, 0.5)
    x, w = _x(), _w(3, len(directions))
    torch.testing.assert_close(conv(x, EDGE_INDEX, w), _reference(conv, x, w))
    w1 = w[:1].expand(3, -1)
    torch.testing.assert_close(conv(x, EDGE_INDEX, w[0]),
                               _reference(conv, x, w1))
    source = torch.randn_like(x)  # messages from another tensor than the embeddings
    torch.testing.assert_close(conv(x, EDGE_INDEX, w, source=source),
                               _reference(conv, x, w, source))


def test_gnn_sends_what_the_source_function_computes_each_round():
    gnn = HierarchyGNN(C, 2)
    x, w = _x(), _w(3, 2)
    seen = []

    def source(h):
        seen.append(h.detach().clone())
        return torch.tanh(h)

    out = gnn(x, EDGE_INDEX, w, source=source)
    assert len(seen) == 2 and torch.equal(seen[0], x)
    first = gnn.convs[0](x, EDGE_INDEX, w, source=torch.tanh(x))
    torch.testing.assert_close(seen[1], first)
    torch.testing.assert_close(out, gnn.convs[1](first, EDGE_INDEX, w, source=torch.tanh(first)))


def test_dropout_only_in_training():
    conv = HierarchyConv(C, dropout=0.5)
    x, w = _x(), _w(3, 2)
    conv.eval()
    torch.testing.assert_close(conv(x, EDGE_INDEX, w), conv(x, EDGE_INDEX, w))
    conv.train()
    torch.manual_seed(0)
    assert not torch.allclose(conv(x, EDGE_INDEX, w), conv(x, EDGE_INDEX, w))


def test_gnn_rounds_and_weights():
    x, w = _x(), _w(3, 2)
    identity = HierarchyGNN(C, 0)
    assert len(identity.convs) == 0
    assert identity(x, EDGE_INDEX, w) is x
    gnn = HierarchyGNN(C, 2, norm=False)
    assert gnn.convs[0].lin["down"].weight is not gnn.convs[1].lin["down"].weight
    assert not torch.equal(gnn.convs[0].lin["down"].weight,
                           gnn.convs[1].lin["down"].weight)
    expected = gnn.convs[1](gnn.convs[0](x, EDGE_INDEX, w), EDGE_INDEX, w)
    torch.testing.assert_close(gnn(x, EDGE_INDEX, w), expected)
    before = gnn(x, EDGE_INDEX, w)
    gnn.reset_parameters()
    assert not torch.allclose(gnn(x, EDGE_INDEX, w), before)


def test_repr():
    assert repr(HierarchyConv(64)) == (
        "HierarchyConv(64, directions=('down', 'up'), message='sum')")
    assert repr(HierarchyConv(16, directions=("up", ), message="attention")) \
        == "HierarchyConv(16, directions=('up',), message='attention')"
    assert repr(HierarchyGNN(64, rounds=2)) == (
        "HierarchyGNN(64, rounds=2, directions=('down', 'up'), message='sum')")
    assert repr(HierarchyGNN(8, 0, directions=["down"], message="attention")) \
        == "HierarchyGNN(8, rounds=0, directions=('down',), message='attention')"


@pytest.mark.parametrize("kwargs, match", [
    (dict(channels=0), "channels"),
    (dict(channels=8, directions=("sideways", )), "directions"),
    (dict(channels=8, directions=()), "directions"),
    (dict(channels=8, directions=("down", "down")), "directions"),
    (dict(channels=8, message="max"), "message"),
    (dict(channels=8, dropout=1.5), "dropout"),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HierarchyConv(**kwargs)


def test_bad_forward_arguments():
    conv = HierarchyConv(C)
    x = _x()
    with pytest.raises(ValueError, match=r"'x' of shape \(B, T, 8\)"):
        conv(torch.randn(3, T, C + 1), EDGE_INDEX)
    with pytest.raises(ValueError, match=r"\(3, 10\).*got \(3, 5\)"):
        conv(x, EDGE_INDEX, torch.rand(3, E))
    with pytest.raises(ValueError, match=r"shape \(2, E\)"):
        conv(x, EDGE_INDEX.t())
    with pytest.raises(ValueError, match=r"\[0, 6\).*\[0, 6\]"):
        conv(x, torch.tensor([[0], [6]]))
    with pytest.raises(ValueError, match="integer"):
        conv(x, EDGE_INDEX.float())
    with pytest.raises(ValueError, match="attention"):
        conv(x, EDGE_INDEX, return_attention_weights=True)
    with pytest.raises(ValueError, match="rounds"):
        HierarchyGNN(C, -1)
    with pytest.raises(ValueError, match="message"):
        HierarchyGNN(C, 0, message="max")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("message", ["sum", "attention"])
def test_cuda_matches_cpu(message):
    gnn = HierarchyGNN(C, 2, message=message)
    x, w = _x(), _w(3, 2)
    expected = gnn(x, EDGE_INDEX, w)
    out = gnn.cuda()(x.cuda(), EDGE_INDEX.cuda(), w.cuda())
    torch.testing.assert_close(out.cpu(), expected, rtol=1e-4, atol=1e-4)


def test_large_batches_recompute_rounds_with_the_same_gradients(monkeypatch):
    import taskgraph.nn.gnn as gnn_module

    gnn = HierarchyGNN(C, 2, dropout=0.3)
    x, w = _x().requires_grad_(), _w(3, 2).requires_grad_()
    grads = []
    for limit in (10**9, 1):  # kept activations, then recomputed ones
        monkeypatch.setattr(gnn_module, "_RECOMPUTE_ELEMENTS", limit)
        torch.manual_seed(0)  # the same dropout masks
        kept = []

        def pack(t):
            kept.append(t.numel())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = gnn(x, EDGE_INDEX, w)
        grads.append((out.detach(), *torch.autograd.grad(out.pow(2).sum(), (x, w)), sum(kept)))
    (o1, gx1, gw1, n1), (o2, gx2, gw2, n2) = grads
    torch.testing.assert_close(o1, o2)
    torch.testing.assert_close(gx1, gx2)
    torch.testing.assert_close(gw1, gw2)
    assert n2 < n1 / 2  # the recomputed rounds keep far fewer tensors for backward


def test_residual_norm_keeps_the_old_round():
    """norm='residual' is LayerNorm(x + GELU(messages)) of messages from x itself: the
    round of models saved before the normalization moved to what is sent."""
    conv = HierarchyConv(C, norm="residual")
    plain = HierarchyConv(C, norm=False)
    plain.load_state_dict({k: v for k, v in conv.state_dict().items() if "norm" not in k})
    x, w = _x(), _w(3, 2)
    torch.testing.assert_close(conv(x, EDGE_INDEX, w), conv.norm(plain(x, EDGE_INDEX, w)))
    with pytest.raises(ValueError, match="'norm'"):
        HierarchyConv(C, norm="after")
