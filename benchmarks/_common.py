"""Shared helpers for the benchmarks: machine info, generated hierarchies, timing, tables.

Absolute times on a shared machine drift from run to run, so the benchmarks report
ratios against a baseline measured in the same run. :func:`compare` interleaves the
candidates (A, B, A, B, ...) after a warm-up so that a slow phase of the machine hits
every candidate alike, and reports the median of the repeats.
"""

from __future__ import annotations

import gc
import os
import platform
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

__all__ = [
    "machine_info", "random_dag_tasks", "layered_dag", "hierarchy_dict", "compare",
    "Timing", "Table", "fmt_time", "fmt_bytes", "paired_ratio", "peak_tensor_bytes",
    "emit", "count_flops",
]


# -- machine -----------------------------------------------------------------------------
def machine_info(seed: int) -> list[str]:
    """Lines describing the machine and the libraries (printed above every table)."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")]
        if names:
            cpu = names[0]
    except OSError:
        pass
    lines = [
        f"platform: {platform.platform()} ({cpu})",
        f"CPUs: {os.cpu_count()}, torch {torch.__version__}, "
        f"torch.get_num_threads() = {torch.get_num_threads()}, "
        f"Python {platform.python_version()}",
        f"seed: {seed}",
    ]
    if hasattr(os, "getloadavg"):
        load = os.getloadavg()
        busy = load[0] > (os.cpu_count() or 1) * 0.75
        lines.append(f"load average at start: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}"
                     + (" (other processes are using the CPUs: expect noisy timings, worst for runs of "
                        "many small multi-threaded ops; --threads 1 is steadier)"
                        if busy else ""))
    try:
        import torch_geometric

        lines[1] += f", torch_geometric {torch_geometric.__version__}"
    except ImportError:
        pass
    return lines


# -- generated hierarchies ---------------------------------------------------------------
def random_dag_tasks(num_tasks: int, *, seed: int = 0, extra_parent_prob: float = 0.2,
                     num_roots: int | None = None, prefix: str = "t") -> dict[str, dict]:
    """The ``tasks:`` mapping of a random DAG of binary tasks.

    Tasks ``0 .. num_roots-1`` are roots; every later task gets one parent drawn
    uniformly from the tasks before it, and with probability ``extra_parent_prob`` a
    second, distinct one (so about ``1 + extra_parent_prob`` parents per task).
    """
    rng = random.Random(seed)
    roots = num_roots if num_roots is not None else max(1, num_tasks // 200)
    tasks: dict[str, dict] = {}
    for i in range(num_tasks):
        if i < roots:
            tasks[f"{prefix}{i}"] = {"type": "binary"}
            continue
        parents = {rng.randrange(i)}
        if rng.random() < extra_parent_prob and i > 1:
            while len(parents) < 2:
                parents.add(rng.randrange(i))
        tasks[f"{prefix}{i}"] = {"type": "binary",
                                 "parents": [f"{prefix}{p}" for p in sorted(parents)]}
    return tasks


def layered_dag(num_nodes: int, *, num_layers: int, num_edges: int,
                seed: int = 0) -> tuple[list[int], list[tuple[int, int]]]:
    """A random layered DAG like a Gene Ontology slice: ``(layer of each node, edges)``.

    Layer sizes grow geometrically; every node below layer 0 gets one parent in the
    layer just above it (so the longest path has ``num_layers - 1`` edges), and the
    remaining ``num_edges - (num_nodes - roots)`` edges join random nodes to random
    nodes of any higher layer.
    """
    rng = random.Random(seed)
    weights = [1.45 ** k for k in range(num_layers)]
    sizes = [max(1, int(num_nodes * w / sum(weights))) for w in weights]
    sizes[-1] += num_nodes - sum(sizes)
    layer: list[int] = []
    for k, size in enumerate(sizes):
        layer.extend([k] * size)
    starts = [sum(sizes[:k]) for k in range(num_layers)]
    edges: set[tuple[int, int]] = set()
    for v in range(sizes[0], num_nodes):
        k = layer[v]
        edges.add((starts[k - 1] + rng.randrange(sizes[k - 1]), v))
    while len(edges) < num_edges:
        v = rng.randrange(sizes[0], num_nodes)
        p = rng.randrange(starts[layer[v]])  # any node of a higher layer
        edges.add((p, v))
    return layer, sorted(edges, key=lambda e: (e[1], e[0]))


def hierarchy_dict(tasks: Mapping[str, dict], *, name: str = "generated") -> dict:
    """A document for :func:`taskgraph.load_hierarchy`."""
    return {"taskgraph": 1, "name": name, "tasks": dict(tasks)}


# -- timing ------------------------------------------------------------------------------
@dataclass
class Timing:
    """Seconds of every repeat of one candidate; ``median`` is what tables report."""

    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def spread(self) -> float:
        """(max - min) / median, a rough noise indicator."""
        return (max(self.times) - min(self.times)) / self.median if self.times else 0.0


def compare(candidates: Mapping[str, Callable[[], object]], *, warmup: int = 1,
            repeat: int = 5) -> dict[str, Timing]:
    """Time every candidate ``repeat`` times, interleaved, after ``warmup`` untimed calls."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    out = {name: Timing() for name in candidates}
    for _ in range(repeat):
        for name, fn in candidates.items():
            gc.collect()
            start = time.perf_counter()
            fn()
            out[name].times.append(time.perf_counter() - start)
    return out


def paired_ratio(num: Timing, den: Timing) -> float:
    """Median over repeats of ``num.times[i] / den.times[i]``.

    :func:`compare` runs the candidates of one repeat back to back, so each pair saw
    nearly the same machine; the median of the pair ratios resists a slow phase better
    than the ratio of the two medians.
    """
    return statistics.median(a / b for a, b in zip(num.times, den.times))


# -- formatting --------------------------------------------------------------------------
def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class Table:
    """A markdown table built row by row."""

    def __init__(self, header: Sequence[str], align: Iterable[str] | None = None) -> None:
        self.header = list(header)
        self.align = list(align) if align is not None else ["---"] * len(self.header)
        self.rows: list[list[str]] = []

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.header):
            raise ValueError(f"expected {len(self.header)} cells, got {len(cells)}")
        self.rows.append([str(c) for c in cells])

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.header) + " |",
                 "|" + "|".join(self.align) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(lines)


# -- FLOPs -------------------------------------------------------------------------------
# FlopCounterMode's formulas read shapes only, so a block-diagonal sparse CSR matrix of
# shape (B R, B S) counts as a dense one: 2 * B R * B S * F per product instead of the
# 2 * nnz * F the kernel computes (33,573 GFLOP instead of about 20 for one 1,000-task
# step). The formulas below see the tensors themselves (``_get_raw``) and count a sparse
# operand by its nonzeros, the sampled product of a weight gradient (which torch's table
# leaves out) as 2 * nnz * k, and in-place addmm_ (also left out) like addmm; dense
# products keep torch's own count.
def _mm_flops(a, b) -> int:
    import torch
    from torch.utils.flop_counter import mm_flop

    if a.layout != torch.strided:  # sparse (m, k) @ dense (k, n): 2 nnz n
        return 2 * int(a._nnz()) * b.shape[-1]
    if b.layout != torch.strided:  # dense (m, k) @ sparse (k, n): 2 m nnz
        return 2 * a.shape[0] * int(b._nnz())
    return mm_flop(a.shape, b.shape)


def _mm_formula(a, b, *args, out_val=None, **kwargs) -> int:
    return _mm_flops(a, b)


def _addmm_formula(bias, a, b, *args, out_val=None, **kwargs) -> int:
    return _mm_flops(a, b)


def _sampled_addmm_formula(pattern, a, b, *args, out_val=None, **kwargs) -> int:
    return 2 * int(pattern._nnz()) * a.shape[-1]  # a length-k dot product per nonzero


for _formula in (_mm_formula, _addmm_formula, _sampled_addmm_formula):
    _formula._get_raw = True  # FlopCounterMode then passes the tensors, not their shapes


def count_flops(fn: Callable[[], object]) -> tuple[int, dict[str, int]]:
    """FLOPs of ``fn()`` (total, and by aten op) from ``FlopCounterMode``, with the
    sparse products counted by their nonzeros (the formulas above)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    aten = torch.ops.aten
    mapping = {aten.mm: _mm_formula, aten.addmm: _addmm_formula,
               aten.addmm_: _addmm_formula,  # in place; not in torch's table
               aten.sparse_sampled_addmm: _sampled_addmm_formula}
    counter = FlopCounterMode(display=False, custom_mapping=mapping)
    with counter:
        fn()
    per_op = {str(op).replace("aten.", ""): n
              for op, n in counter.get_flop_counts().get("Global", {}).items()}
    return counter.get_total_flops(), per_op


# -- memory ------------------------------------------------------------------------------
def peak_tensor_bytes(fn: Callable[[], object]) -> tuple[int, object]:
    """Peak bytes of tensor storage allocated by the torch operations inside ``fn``.

    Counts every storage that an operation creates while ``fn`` runs (inputs made
    before the call are not counted), and drops it once no tensor made inside the call
    refers to it; the high-water mark is returned with ``fn``'s result. Buffers that a
    kernel uses internally and never hands back are not seen.
    """
    import weakref

    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    live: dict[int, list[int]] = {}  # storage key -> [bytes, live tensors]
    state = {"now": 0, "peak": 0}

    def release(key: int) -> None:
        entry = live.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            state["now"] -= entry[0]
            del live[key]

    class Tracker(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_leaves(out):
                if not isinstance(t, torch.Tensor) or t.device.type == "meta":
                    continue
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if key == 0:
                    continue
                if key not in live:
                    live[key] = [storage.nbytes(), 0]
                    state["now"] += storage.nbytes()
                    state["peak"] = max(state["peak"], state["now"])
                live[key][1] += 1
                weakref.finalize(t, release, key)
            return out

    with Tracker():
        result = fn()
    return state["peak"], result


def emit(lines: Sequence[str], out: str | None) -> None:
    """Print the report's markdown lines, and write them to ``out`` when given."""
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text)
