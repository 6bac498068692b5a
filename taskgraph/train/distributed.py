"""Distributed data-parallel training under ``torchrun``.

Start a script with ``torchrun --nproc_per_node=N script.py``; the script calls
:func:`init_distributed` (gloo on CPU, nccl on GPU) and then ``taskgraph.fit`` as usual.
``fit`` sees the initialized process group, wraps the model in
``DistributedDataParallel``, re-shards the training loader with a
``DistributedSampler`` (its ``batch_size`` is per process; the global batch is N times
it), sums the epoch statistics over processes, and writes checkpoints and progress on
rank 0 only.

Example:
    >>> with distributed_context(torch.nn.Linear(2, 2), [1, 2, 3]) as ctx:
    ...     ctx.is_main, ctx.world_size
    (True, 1)
"""

from __future__ import annotations

import os
from typing import Any, Iterable

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, RandomSampler
from torch.utils.data.distributed import DistributedSampler

__all__ = ["init_distributed", "distributed_context", "DistributedContext"]


def init_distributed(backend: str | None = None) -> int:
    """Initialize the process group from ``torchrun``'s environment; returns the rank.

    ``backend`` defaults to ``nccl`` when CUDA is available, else ``gloo``. Without
    ``torchrun`` (no ``WORLD_SIZE``) this does nothing and returns 0.
    """
    if dist.is_initialized():
        return dist.get_rank()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    return dist.get_rank()


class DistributedContext:
    """What ``fit`` needs to know about the process group (a no-op without one)."""

    def __init__(self, net: nn.Module, loader: Any, rank: int, world_size: int,
                 sampler: DistributedSampler | None) -> None:
        self.net, self.loader, self.rank, self.world_size = net, loader, rank, world_size
        self.sampler = sampler

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def set_epoch(self, epoch: int) -> None:
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum over processes (identity without a process group)."""
        if self.world_size > 1:
            tensor = tensor.clone()
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def average_gradients(self, params: Iterable[nn.Parameter]) -> None:
        """Average the gradients of ``params`` over processes, for parameters that
        DistributedDataParallel does not hold (the learned task weights)."""
        if self.world_size > 1:
            for p in params:
                if p.grad is not None:
                    p.grad.copy_(self.all_reduce(p.grad) / self.world_size)

    def close(self) -> None:
        """Wait for every process (rank 0 may still be writing its checkpoint)."""
        if self.world_size > 1:
            dist.barrier()

    def __enter__(self) -> "DistributedContext":
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        # After an error the other processes may be waiting in a collective that this
        # one will never join; a barrier here would hang instead of failing.
        if exc_type is None:
            self.close()


def distributed_context(model: nn.Module, loader: Any, *, seed: int | None = None
                        ) -> DistributedContext:
    """Wrap ``model`` in DDP and shard ``loader`` when a process group is initialized."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return DistributedContext(model, loader, 0, 1, None)
    rank, world = dist.get_rank(), dist.get_world_size()
    device = next(model.parameters()).device
    net = nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)
    sampler = None
    if isinstance(loader, DataLoader) and not isinstance(loader.sampler, DistributedSampler):
        sampler = DistributedSampler(loader.dataset, num_replicas=world, rank=rank,
                                     shuffle=isinstance(loader.sampler, RandomSampler),
                                     seed=seed or 0, drop_last=loader.drop_last)
        loader = DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler,
                            num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                            drop_last=loader.drop_last, pin_memory=loader.pin_memory)
    elif isinstance(loader, DataLoader):
        sampler = loader.sampler
    return DistributedContext(net, loader, rank, world, sampler)
