"""Shared command-line options: checked numbers, output folders, threads and device.

Every numeric option is checked by its argparse ``type`` before a command runs, so a
bad value is one line naming the option and exit status 2 (argparse's usage error),
never a traceback and never after an epoch of training:

    >>> import argparse
    >>> p = argparse.ArgumentParser(prog="taskgraph train")
    >>> _ = p.add_argument("--lr", type=number(low=0, low_open=True), default=1e-3)
    >>> p.parse_args(["--lr", "0.01"]).lr
    0.01
    >>> number(low=0, low_open=True)("nan")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected a finite number > 0, got 'nan'
    >>> integer(low=1)("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected an integer >= 1, got '0'

``--threads`` defaults to ``auto`` (:func:`choose_threads`): one torch thread unless the
model's work per step is large enough for more to pay, and never more threads than the
machine has idle cores, because OpenMP threads that spin-wait for a core another
process holds make every small operation many times slower.
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Any, Callable

__all__ = ["number", "integer", "add_runtime_options", "apply_runtime", "choose_threads",
           "output_dir", "output_file", "idle_cores", "PARALLEL_WORK"]

# Elements of the (B, T, F) task-embedding tensor per step above which a second thread
# pays for its synchronization (benchmarks/threads.py measures both sides of it).
PARALLEL_WORK = 2 ** 20


def number(*, low: float | None = None, high: float | None = None, low_open: bool = False,
           high_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type``: a finite float in the given range."""
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    wanted = "a finite number" + (" " + " and ".join(parts) if parts else "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if not math.isfinite(value) or (low is not None and (value < low or (low_open and value == low))) \
                or (high is not None and (value > high or (high_open and value == high))):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    parse.__name__ = "number"  # argparse names the type in some messages
    return parse


def integer(*, low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``[low, high]``."""
    parts = [f">= {low}"] if low is not None else []
    parts += [f"<= {high}"] if high is not None else []
    wanted = "an integer" + (" " + " and ".join(parts) if parts else "")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def _threads(text: str) -> int | str:
    if text == "auto":
        return "auto"
    return integer(low=1)(text)


def add_runtime_options(p: argparse.ArgumentParser) -> None:
    """``--threads N|auto`` and ``--device DEVICE`` on a command that runs a model."""
    p.add_argument("--threads", type=_threads, default="auto", metavar="N",
                   help="torch CPU threads, or 'auto' (default): one thread unless the "
                   "model is large and the machine has idle cores (see the README's "
                   "'Threads' section); OMP_NUM_THREADS, when set, is the default instead")
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="torch device, e.g. cpu, cuda, cuda:1, mps (default: cpu)")


def _cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs from ``/proc/stat`` (Linux), else ``None``."""
    try:
        with open("/proc/stat") as fh:
            fields = [float(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def idle_cores(window: float = 0.2) -> int:
    """Cores this process may use that other processes are not busy on (at least 1).

    Measured over ``window`` seconds from ``/proc/stat`` (the load average lags by a
    minute); elsewhere the 1-minute load average stands in.
    """
    import time

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    first = _cpu_times()
    if first is not None:
        time.sleep(window)
        second = _cpu_times()
        spent = second[1] - first[1] if second else 0.0
        busy = (second[0] - first[0]) / spent * (os.cpu_count() or 1) if spent > 0 else 0.0
    else:
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):
            busy = 0.0
    return max(1, min(cores, int(cores - busy + 0.5)))


def choose_threads(work: int, *, cores: int | None = None) -> int:
    """The ``auto`` thread count for a step that touches ``work`` embedding elements.

    >>> choose_threads(64 * 1000 * 16, cores=2)
    1
    >>> choose_threads(32 * 10_000 * 16, cores=2)
    2
    >>> choose_threads(32 * 100_000 * 16, cores=1)
    1
    """
    if work < PARALLEL_WORK:
        return 1
    cores = idle_cores() if cores is None else cores
    return max(1, min(cores, 1 + work // PARALLEL_WORK))


def apply_runtime(args: argparse.Namespace, *, work: int | None = None) -> Any:
    """Set torch's thread count from ``args.threads`` and return ``args.device`` as a
    ``torch.device`` (checked: an unknown or unavailable device is a clean error).

    ``work``: the (B, T, F) elements of one step, for ``--threads auto``; unknown work
    means one thread.
    """
    import torch

    from taskgraph.errors import DataError

    threads = args.threads
    if threads == "auto":
        env = os.environ.get("OMP_NUM_THREADS", "")
        threads = int(env) if env.isdigit() and int(env) > 0 else choose_threads(work or 0)
    torch.set_num_threads(int(threads))
    name = args.device or "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise DataError(f"--device: unknown device {name!r}; expected e.g. cpu, cuda, "
                        "cuda:0, mps") from None
    available = {"cpu": True,
                 "cuda": torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count(),
                 "mps": getattr(torch.backends, "mps", None) is not None
                 and torch.backends.mps.is_available()}
    if not available.get(device.type, False):
        raise DataError(f"--device: {name!r} is not available on this machine"
                        + (" (torch was built without CUDA, or no GPU is visible)"
                           if device.type == "cuda" else ""))
    return device


def output_dir(path: str, option: str = "--out") -> str:
    """Check that ``path`` can be an output folder (missing, or an existing folder);
    the folder and its parents are created. Returns the absolute path.

    >>> import tempfile; output_dir(tempfile.mkdtemp()) != ""
    True
    """
    from taskgraph.errors import DataError

    full = os.path.abspath(path)
    if os.path.exists(full) and not os.path.isdir(full):
        raise DataError(f"{option} {path}: exists and is a file, not a folder; name a "
                        "folder (it is created if missing)")
    try:
        os.makedirs(full, exist_ok=True)
    except OSError as err:
        raise DataError(f"{option} {path}: cannot create the folder ({err.strerror})") from None
    return full


def output_file(path: str, option: str = "-o") -> str:
    """Check that ``path`` can be an output file (not a folder); its missing parent
    folders are created. Returns ``path``.

    >>> import os, tempfile
    >>> out = os.path.join(tempfile.mkdtemp(), "new", "graph.png")
    >>> output_file(out) == out and os.path.isdir(os.path.dirname(out))
    True
    """
    from taskgraph.errors import DataError

    if os.path.isdir(path):
        raise DataError(f"{option} {path}: is a folder; name a file")
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as err:
        raise DataError(f"{option} {path}: cannot create its folder {parent} "
                        f"({err.strerror})") from None
    return path
