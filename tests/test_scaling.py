"""Catch quadratic regressions: 2,000 vs 8,000 tasks, compared loosely.

Four times the tasks must cost about four times as much; a quadratic step would cost
sixteen. Tensor work is measured deterministically: the bytes of every new tensor that
the torch ops of a train step and of predict allocate, counted with a dispatch mode
(the per-level backward of the old coherence sweep made this ratio 10). The pure-Python
parts (load + validate, compile) are timed, best of three, with a loose bound.
"""

from __future__ import annotations

import random
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import taskgraph as tg

SMALL, LARGE = 2000, 8000
LINEAR = LARGE / SMALL  # 4: the ratio of a linear step; quadratic would be 16


def _dag(n: int, seed: int = 0) -> dict:
    """A random DAG whose depth grows with n, as real label hierarchies' do."""
    rng = random.Random(seed)
    tasks = {"t0": {"type": "binary"}}
    for i in range(1, n):
        k = 2 if rng.random() < 0.2 and i > 1 else 1
        parents = sorted({f"t{rng.randrange(max(0, i - 100), i)}" for _ in range(k)})
        tasks[f"t{i}"] = {"type": "binary", "parents": parents}
    return {"taskgraph": 1, "model": {"coherent": True}, "tasks": tasks}


class _BytesAllocated(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        inputs = {t.untyped_storage().data_ptr() for t in _tensors((args, kwargs))}
        out = func(*args, **(kwargs or {}))
        for t in _tensors(out):  # new tensors only: views and in-place results alias an input
            if t.untyped_storage().data_ptr() not in inputs:
                self.total += t.numel() * t.element_size()
        return out


def _tensors(tree) -> list[torch.Tensor]:
    if isinstance(tree, torch.Tensor):
        return [tree] if tree.layout == torch.strided else []
    if isinstance(tree, (tuple, list)):
        return [t for item in tree for t in _tensors(item)]
    if isinstance(tree, dict):
        return [t for item in tree.values() for t in _tensors(item)]
    return []


def _tensor_work(n: int) -> tuple[int, int]:
    torch.manual_seed(0)
    model = tg.compile(_dag(n), in_features=8, task_dim=8, projection_rank=8)
    x = torch.randn(4, 8)
    y = (torch.rand(4, n) < 0.1).float()
    with _BytesAllocated() as train:
        model.loss(model(x), y, dataset_size=100).total.backward()
    model.eval()
    with _BytesAllocated() as predict:
        model.predict(x, samples=4)
    return train.total, predict.total


def _best_of_three(fn) -> float:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def test_tensor_work_grows_linearly_with_tasks():
    (train_s, predict_s), (train_l, predict_l) = _tensor_work(SMALL), _tensor_work(LARGE)
    assert train_l / train_s < 1.5 * LINEAR, (train_s, train_l)
    assert predict_l / predict_s < 1.5 * LINEAR, (predict_s, predict_l)


def test_load_and_compile_time_grow_linearly_with_tasks():
    docs = {n: _dag(n) for n in (SMALL, LARGE)}
    texts = {n: tg.load_hierarchy(d).to_yaml() for n, d in docs.items()}
    load = {n: _best_of_three(lambda: tg.load_hierarchy(texts[n])) for n in docs}
    hs = {n: tg.load_hierarchy(texts[n]) for n in docs}
    comp = {n: _best_of_three(lambda: tg.compile(hs[n], in_features=8, task_dim=8))
            for n in docs}
    # loose: shared CI machines are noisy, but a quadratic step is 16x
    assert load[LARGE] / load[SMALL] < 2.5 * LINEAR, load
    assert comp[LARGE] / comp[SMALL] < 2.5 * LINEAR, comp
