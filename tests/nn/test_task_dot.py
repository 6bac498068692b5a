"""task_dot: the scalar heads' chunked dot products, against a hand-computed case, against
``(x * w).sum(-1)`` and its autograd gradients across chunk boundaries, and gradcheck."""

from __future__ import annotations

import pytest
import torch

import taskgraph.nn.task_dot as td
from taskgraph.errors import ArgumentError
from taskgraph.nn.task_dot import task_dot


def test_a_case_by_hand():
    x = torch.tensor([[[1.0, 2.0], [3.0, -1.0]]], requires_grad=True)  # (1, 2 tasks, 2)
    w = torch.tensor([[0.5, 1.0], [2.0, 4.0]], requires_grad=True)
    y = task_dot(x, w)
    assert y.tolist() == [[2.5, 2.0]]  # 1*.5 + 2*1 ; 3*2 - 1*4
    (y * torch.tensor([[1.0, 10.0]])).sum().backward()
    assert x.grad.tolist() == [[[0.5, 1.0], [20.0, 40.0]]]  # g_t w_t
    assert w.grad.tolist() == [[1.0, 2.0], [30.0, -10.0]]  # g_t x_t


@pytest.mark.parametrize("chunk", [1, 7, 1 << 18])
@pytest.mark.parametrize("lead", [(5,), (3, 4), ()])
def test_matches_the_plain_product_and_its_gradients(monkeypatch, chunk, lead):
    monkeypatch.setattr(td, "_CHUNK_ELEMENTS", chunk)  # 1: one row per chunk
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*lead, 6, 3, generator=g, requires_grad=True)
    w = torch.randn(6, 3, generator=g, requires_grad=True)
    upstream = torch.randn(*lead, 6, generator=g)
    y = task_dot(x, w)
    (y * upstream).sum().backward()
    gx, gw = x.grad.clone(), w.grad.clone()
    x.grad = w.grad = None
    ref = (x * w).sum(-1)
    (ref * upstream).sum().backward()
    torch.testing.assert_close(y, ref)
    torch.testing.assert_close(gx, x.grad)
    torch.testing.assert_close(gw, w.grad)


def test_gradcheck(monkeypatch):
    monkeypatch.setattr(td, "_CHUNK_ELEMENTS", 10)
    x = torch.randn(4, 3, 2, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(task_dot, (x, w))


def test_only_the_needed_gradient():
    x = torch.randn(2, 3, 4, requires_grad=True)
    w = torch.randn(3, 4)  # a constant
    task_dot(x, w).sum().backward()
    torch.testing.assert_close(x.grad, w.expand(2, 3, 4))


def test_no_rows():
    assert task_dot(torch.randn(0, 3, 2), torch.randn(3, 2)).shape == (0, 3)


@pytest.mark.parametrize("xs, ws", [((2, 3, 4), (3, 5)), ((4,), (1, 4)), ((2, 3, 4), (3, 4, 1))])
def test_bad_shapes(xs, ws):
    with pytest.raises(ArgumentError, match="task_dot: expected x of shape"):
        task_dot(torch.randn(*xs), torch.randn(*ws))
