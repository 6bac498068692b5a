"""Subprocess worker for the distributed test: one process of a 2-process gloo group.

Usage (environment: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK):
    python ddp_worker.py FOLDER BATCH_SIZE EPOCHS WEIGHTING [WEIGHTING]...

For each WEIGHTING, in order, trains a fresh model on the toy problem of :func:`build`
with ``taskgraph.fit`` and checkpoint_dir FOLDER/ckpt-WEIGHTING-RANK, then saves the
final state_dict, the history and the optimizer's extra parameter groups (the learned
task weights of ``weighting="uncertainty"``) to FOLDER/out-WEIGHTING-RANK.pt.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build(batch_size: int):
    """Deterministic data (fully labelled), a model with no randomness in its forward
    pass (fixed synapses, no dropout) and an unshuffled loader."""
    import torch

    import taskgraph as tg
    from taskgraph.train import TaskDataset, make_loader

    h = tg.load_hierarchy(ROOT / "hierarchies" / "fashion.yaml")
    gen = torch.Generator().manual_seed(11)
    n = 64
    x = torch.randn(n, 6, generator=gen)
    kind = (x[:, 0] > 0.4).long() + (x[:, 0] > 1.0).long()
    group = torch.randint(0, 6, (n,), generator=gen)
    item = (x[:, 1] * 3).clamp(-4.9, 4.9).add(5).long()
    y = torch.stack([kind, group, item], 1).float()
    data = TaskDataset(x, y, h)
    torch.manual_seed(0)
    model = tg.compile(h, in_features=6, task_dim=4, synapse={"kind": "fixed"},
                       encoder_spec={"hidden": [8], "dropout": 0.0}, dropout=0.0)
    return model, make_loader(data, batch_size=batch_size, shuffle=False)


def main(argv: list[str]) -> None:
    import torch
    import torch.distributed as dist

    import taskgraph as tg
    from taskgraph.train import init_distributed

    torch.set_num_threads(1)
    folder, batch_size, epochs = Path(argv[1]), int(argv[2]), int(argv[3])
    rank = init_distributed("gloo")
    for weighting in argv[4:]:
        model, loader = build(batch_size)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        try:
            history = tg.fit(model, loader, epochs=epochs, optimizer=optimizer, seed=0,
                             checkpoint_dir=folder / f"ckpt-{weighting}-{rank}",
                             progress=False, weighting=weighting)
        except ValueError as err:  # refused configurations are reported, not trained
            (folder / f"error-{weighting}-{rank}.txt").write_text(str(err))
            continue
        extra = [p.detach().clone() for g in optimizer.param_groups[1:] for p in g["params"]]
        torch.save({"rank": rank, "world": dist.get_world_size(), "state": model.state_dict(),
                    "history": history.to_dict(), "extra": extra},
                   folder / f"out-{weighting}-{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv)
