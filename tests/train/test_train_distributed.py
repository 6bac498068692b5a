"""Distributed data-parallel training: two gloo processes on loopback."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

import taskgraph as tg
from taskgraph.train.distributed import distributed_context
from taskgraph.train.state import read_checkpoint

WORKER = Path(__file__).with_name("ddp_worker.py")
ATOL = 1e-5

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available in this build")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _load_worker():
    spec = importlib.util.spec_from_file_location("taskgraph_tests_ddp_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BATCH, EPOCHS = 8, 3
WEIGHTINGS = ("static", "uncertainty", "pcgrad")


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory):
    """One 2-process gloo group that trains a fresh model per weighting, in order."""
    folder = tmp_path_factory.mktemp("ddp")
    port = _free_port()
    procs = []
    try:
        for rank in range(2):
            env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                       RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                       OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
            procs.append(subprocess.Popen(
                [sys.executable, str(WORKER), str(folder), str(BATCH), str(EPOCHS),
                 *WEIGHTINGS],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        logs = [p.communicate(timeout=300)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return folder, [p.returncode for p in procs], logs


def _outputs(ddp_runs, weighting):
    folder, codes, logs = ddp_runs
    for rank, (code, err) in enumerate(zip(codes, logs)):
        path = folder / f"out-{weighting}-{rank}.pt"
        assert path.exists(), f"rank {rank} (exit status {code}) wrote no result:\n{err[-4000:]}"
    return folder, [torch.load(folder / f"out-{weighting}-{r}.pt", weights_only=True)
                    for r in range(2)]


def _single_process(weighting):
    worker = _load_worker()
    model, loader = worker.build(2 * BATCH)
    assert loader.batch_size == 2 * BATCH
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = tg.fit(model, loader, epochs=EPOCHS, optimizer=optimizer, seed=0, progress=False,
                     weighting=weighting)
    extra = [p.detach().clone() for g in optimizer.param_groups[1:] for p in g["params"]]
    fresh, _ = worker.build(2 * BATCH)
    return model, history, extra, fresh


def test_two_processes_match_one_process_with_twice_the_batch(ddp_runs):
    """Two gloo processes with per-process batch size b = 8 train like one process with
    batch size 2b = 16.

    The loaders are unshuffled, every example is fully labelled, the synapses are fixed
    and there is no dropout, so nothing random differs: DistributedSampler hands rank r
    the examples r, r + 2, ..., and together the two ranks see exactly the single
    process's batches; DDP averages the two per-rank gradients, which equals the
    gradient of the single process's mean loss. Tolerance: the weights agree to
    atol 1e-5 (float summation order is the only difference); the two ranks agree
    exactly. Only rank 0 writes a checkpoint.
    """
    folder, outs = _outputs(ddp_runs, "static")
    assert [(o["rank"], o["world"]) for o in outs] == [(0, 2), (1, 2)]
    for key in outs[0]["state"]:
        assert torch.equal(outs[0]["state"][key], outs[1]["state"][key]), key

    model, history, _, fresh = _single_process("static")
    single = model.state_dict()
    diffs = {k: (single[k] - outs[0]["state"][k]).abs().max().item() for k in single}
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] <= ATOL, f"max |DDP - single| = {diffs[worst]:.3g} at {worst}"
    # the weights moved: the comparison is not between two untouched initializations
    assert any(not torch.allclose(fresh.state_dict()[k], single[k], atol=1e-3) for k in single)

    ddp_history = outs[0]["history"]["epochs"]
    assert [r["epoch"] for r in ddp_history] == list(range(1, EPOCHS + 1))
    for mine, theirs in zip(history.records, ddp_history):
        assert theirs["loss"] == pytest.approx(mine["loss"], rel=1e-5)
        assert theirs["per_task"] == pytest.approx(mine["per_task"], rel=1e-5)

    # rank 0 writes the checkpoint, rank 1 writes nothing at all
    assert sorted(p.name for p in (folder / "ckpt-static-0").iterdir()) == ["last.pt"]
    assert not (folder / "ckpt-static-1").exists()
    ckpt = read_checkpoint(folder / "ckpt-static-0" / "last.pt")
    assert ckpt["epoch"] == EPOCHS
    for key, value in outs[0]["state"].items():
        assert torch.equal(ckpt["model"][key], value), key


def test_uncertainty_weights_stay_in_sync_across_processes(ddp_runs):
    """The learned log-variances are part of the model being trained: every rank must
    hold the same ones (as one process with the global batch would), or each rank
    optimizes a different objective and only rank 0's reach the checkpoint."""
    _, outs = _outputs(ddp_runs, "uncertainty")
    (rank0,), (rank1,) = outs[0]["extra"], outs[1]["extra"]
    _, _, (single,), _ = _single_process("uncertainty")
    assert torch.allclose(rank0, single, atol=ATOL), (rank0, single)
    assert torch.allclose(rank1, single, atol=ATOL), (rank1, single)
    for key in outs[0]["state"]:
        assert torch.allclose(outs[0]["state"][key], outs[1]["state"][key], atol=ATOL), key


def test_pcgrad_is_refused_in_distributed_runs(ddp_runs):
    """PCGrad's per-task gradients bypass DDP's gradient averaging, so replicas would
    drift apart silently; fit refuses it on every rank with a clear message instead."""
    folder, codes, logs = ddp_runs
    for rank in range(2):
        path = folder / f"error-pcgrad-{rank}.txt"
        assert path.exists(), f"rank {rank} trained pcgrad without complaint:\n{logs[rank][-2000:]}"
        assert "pcgrad" in path.read_text() and "distributed" in path.read_text()
        assert not (folder / f"out-pcgrad-{rank}.pt").exists()


def test_without_a_process_group_nothing_is_wrapped(tk):
    h = tk.hierarchy("cell_functions")
    model = tk.model(h)
    loader = tk.loader(h, *tk.cell_data(16))
    ctx = distributed_context(model, loader, seed=0)
    assert ctx.net is model and ctx.loader is loader
    assert (ctx.rank, ctx.world_size, ctx.is_main) == (0, 1, True)
    t = torch.arange(3.0)
    assert ctx.all_reduce(t) is t


def test_init_distributed_without_torchrun_is_a_no_op(monkeypatch):
    from taskgraph.train import init_distributed

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert init_distributed() == 0
    assert not dist.is_initialized()
