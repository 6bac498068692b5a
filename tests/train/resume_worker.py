"""Subprocess worker for the exact-resume tests (run as a script, not imported by tests).

Usage: python resume_worker.py EPOCHS KILL_AT MODE CHECKPOINT_DIR OUT [MODE CHECKPOINT_DIR OUT]...

Runs the jobs in order. MODE is ``full`` (train without interruption), ``kill`` (SIGKILL
itself right after the training of epoch KILL_AT, from inside the scheduler's step, so
the last checkpoint is the one of epoch KILL_AT - 1) or ``resume`` (continue from
CHECKPOINT_DIR/last.pt). A job saves its final state_dict, history and optimizer state
to OUT.

Everything random is in play: dropout, gaussian and bernoulli synapses, a shuffled
loader, gradient noise, a scheduler, validation and early stopping.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build(kill_at: int | None):
    import torch

    import taskgraph as tg
    from taskgraph.train import TaskDataset, make_loader

    h = tg.load_hierarchy(ROOT / "hierarchies" / "animals.yaml")
    gen = torch.Generator().manual_seed(123)

    def data(n: int):
        x = torch.randn(n, 6, generator=gen)
        mammal = (x[:, 0] > 0).float()
        diet = (x[:, 1] > 0.3).long() + (x[:, 2] > 0.5).long()
        species = torch.randint(0, 4, (n,), generator=gen)
        weight = x[:, 3] * 2.0 + 1.0
        y = torch.stack([mammal, diet.float(), species.float(), weight], 1)
        y[::5, 1] = -1.0  # some missing labels
        y[::7, 3] = float("nan")
        return TaskDataset(x, y, h)

    train, val = data(48), data(16)

    torch.manual_seed(0)
    model = tg.compile(h, in_features=6, task_dim=4,
                       encoder_spec={"hidden": [8], "dropout": 0.2}, dropout=0.1)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)

    def factor(epoch: int) -> float:
        if kill_at is not None and epoch == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return 0.9 ** epoch

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    loaders = (make_loader(train, batch_size=8, shuffle=True, seed=5),
               make_loader(val, batch_size=8, shuffle=False))
    return model, optimizer, scheduler, loaders


def run(mode: str, ckpt_dir: str, out: str, epochs: int, kill_at: int) -> None:
    import torch

    import taskgraph as tg

    model, optimizer, scheduler, (train, val) = build(kill_at if mode == "kill" else None)
    history = tg.fit(model, train, val_loader=val, epochs=epochs, optimizer=optimizer,
                     scheduler=scheduler, grad_noise=0.05, kl_warmup=2,
                     early_stopping=tg.EarlyStopping("val_loss", patience=epochs),
                     checkpoint_dir=ckpt_dir, resume=(mode == "resume"), progress=False,
                     seed=7, val_metrics=False)
    torch.save({"state": model.state_dict(), "history": history.to_dict(),
                "optimizer": optimizer.state_dict()}, out)


def main(argv: list[str]) -> None:
    import torch

    torch.set_num_threads(1)
    epochs, kill_at, jobs = int(argv[1]), int(argv[2]), argv[3:]
    if not jobs or len(jobs) % 3:
        raise SystemExit(__doc__)
    for i in range(0, len(jobs), 3):
        run(jobs[i], jobs[i + 1], jobs[i + 2], epochs, kill_at)


if __name__ == "__main__":
    main(sys.argv)
