"""Keep freed memory in the process, so that large tensors do not page-fault every step.

On Linux, glibc hands every allocation above its mmap threshold (which adapts, up to
32 MiB) straight back to the kernel when it is freed. A model with tensors larger than
that, such as the ``T * D * F`` task projections of a Gene Ontology hierarchy (4,130
tasks x 512 x 8 floats = 68 MB, plus its gradient and Adam's buffers), then gets fresh
pages from the kernel on every training step and pays a page fault per 4 KiB page
before it can write them. On a 2-core virtual machine a train step of such a model
took 269 ms with glibc's defaults and 145 ms with freed memory kept
(``benchmarks/memory_reuse.py``).

:func:`reuse_freed_memory` raises glibc's thresholds with ``mallopt`` so that freed
blocks stay in the heap and are reused. The price is that the process keeps its peak
heap until it exits, so it suits a training or prediction run, not a long-lived process
that must give memory back. ``taskgraph train``, ``evaluate`` and ``demo`` call it; a
script that uses the Python API can call it once at the start. Setting the environment
variable ``TASKGRAPH_KEEP_FREED_MEMORY=0`` turns it off. Where the C library is not
glibc (macOS, Windows, musl) it does nothing and returns :obj:`False`.

Example:
    >>> from taskgraph.memory import reuse_freed_memory
    >>> reuse_freed_memory() in (True, False)
    True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["reuse_freed_memory", "ENV_VAR"]

#: The environment variable that turns :func:`reuse_freed_memory` off when set to ``0``.
ENV_VAR = "TASKGRAPH_KEEP_FREED_MEMORY"

# mallopt parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

# The largest value glibc accepts for the mmap threshold is HEAP_MAX / 2 = 32 MiB on
# 64-bit systems unless set explicitly, which lifts the cap; 1 GiB keeps any single
# tensor up to that size in the heap.
_MMAP_THRESHOLD = 1 << 30
_TRIM_THRESHOLD = 1 << 30
_TOP_PAD = 64 << 20


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    # gnu_get_libc_version exists in glibc only (musl has mallopt as a no-op stub).
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return None
    return libc


def reuse_freed_memory(enable: bool | None = None) -> bool:
    """Make glibc keep freed blocks for reuse instead of returning them to the kernel.

    Args:
        enable: :obj:`True` to apply, :obj:`False` to do nothing; :obj:`None` (default)
            applies unless the environment variable ``TASKGRAPH_KEEP_FREED_MEMORY`` is
            ``0``.

    Returns:
        :obj:`True` if the thresholds were set, :obj:`False` otherwise (turned off, or
        not glibc).
    """
    if enable is None:
        enable = os.environ.get(ENV_VAR, "1").strip() not in ("0", "false", "no", "off")
    if not enable:
        return False
    libc = _glibc()
    if libc is None:
        return False
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    ok = True
    for param, value in ((_M_MMAP_THRESHOLD, _MMAP_THRESHOLD),
                         (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD), (_M_TOP_PAD, _TOP_PAD)):
        ok = bool(libc.mallopt(param, value)) and ok  # mallopt returns 1 on success
    return ok
