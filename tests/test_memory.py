"""reuse_freed_memory: glibc keeps large freed blocks in the heap instead of unmapping them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from taskgraph.memory import ENV_VAR, _glibc, reuse_freed_memory

needs_glibc = pytest.mark.skipif(_glibc() is None, reason="needs glibc (Linux)")

# Allocates 96 MiB with malloc and reports how many bytes glibc served from mmap-ed
# chunks (hblkhd) while it was held, and how much free space the heap kept after free.
_PROBE = textwrap.dedent("""
    import ctypes, json, sys
    from taskgraph.memory import reuse_freed_memory
    class Info(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena ordblks smblks hblks hblkhd "
                    "usmblks fsmblks uordblks fordblks keepcost").split()]
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = Info
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    applied = reuse_freed_memory(sys.argv[1] == "on")
    before = libc.mallinfo2().hblkhd
    p = libc.malloc(96 << 20)
    mapped = libc.mallinfo2().hblkhd - before
    libc.free(p)
    print(json.dumps({"applied": applied, "mapped": mapped, "kept": libc.mallinfo2().fordblks}))
""")


def _probe(mode: str) -> dict:
    import json
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


@needs_glibc
def test_large_blocks_stay_in_the_heap_after_free() -> None:
    off, on = _probe("off"), _probe("on")
    assert off["applied"] is False and on["applied"] is True
    assert off["mapped"] >= 96 << 20  # glibc's default: a fresh mapping, unmapped on free
    assert on["mapped"] == 0  # served from the heap ...
    assert on["kept"] >= 96 << 20  # ... and kept there for the next step


def test_environment_variable_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "0")
    assert reuse_freed_memory() is False
    assert reuse_freed_memory(enable=False) is False


def test_exported_lazily_from_the_package() -> None:
    import taskgraph as tg

    assert tg.reuse_freed_memory is reuse_freed_memory
