"""Diagnostic: the size of each parameter's gradient against its weight-decay term.

Adam's ``weight_decay`` adds :math:`\\lambda \\theta` to the gradient. The recipe's loss is
a mean over tasks, so the data gradient of a per-task or per-edge parameter shrinks as
the hierarchy grows while :math:`\\lambda \\theta` does not. For each parameter tensor
this prints, after one epoch of the default model on the first ``--rows`` training rows
(batch 32, Adam lr 1e-3, ``weight_decay`` 1e-5), the median over its entries of the
gradient's root mean square as Adam tracks it (:math:`\\sqrt{\\hat v}`, bias-corrected)
and the median of :math:`\\lambda |\\theta|`, and their ratio.

Run:
    python benchmarks/grad_scale.py --datasets cellcycle_FUN,eisen_GO
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

DEFAULT_ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "hmc")


def grad_scale(name: str, root: str, rows: int, seed: int = 0) -> list[tuple[str, float, float]]:
    """``(parameter, median sqrt(v_hat), median weight_decay * |theta|)`` per tensor."""
    import taskgraph as tg
    from taskgraph.datasets.hmc import load_hmc
    from taskgraph.recipes.hmc import HMC_CONFIG
    from taskgraph.train import TaskDataset, make_loader

    data = load_hmc(name, root).preprocessed()
    torch.manual_seed(seed)
    model = tg.compile(data.hierarchy, in_features=data.train.X.shape[1], **HMC_CONFIG["model"])
    decay = HMC_CONFIG["train"]["weight_decay"]
    loader = make_loader(TaskDataset(data.train.X[:rows], data.train.Y[:rows], data.hierarchy),
                         batch_size=HMC_CONFIG["train"]["batch_size"], seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=HMC_CONFIG["train"]["lr"],
                                 weight_decay=decay)
    tg.fit(model, loader, epochs=1, optimizer=optimizer, kl_weight=1.0, progress=False,
           seed=seed, val_metrics=False)
    out = []
    for pname, p in model.named_parameters():
        state = optimizer.state[p]
        v_hat = state["exp_avg_sq"] / (1 - 0.999 ** float(state["step"]))
        out.append((pname, v_hat.sqrt().median().item(), (decay * p.detach().abs()).median().item()))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="gradient size against the weight-decay term")
    p.add_argument("--root", default=DEFAULT_ROOT)
    p.add_argument("--datasets", default="cellcycle_FUN")
    p.add_argument("--rows", type=int, default=640)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    for name in (n.strip() for n in args.datasets.split(",") if n.strip()):
        print(f"\n{name} (first {args.rows} training rows, one epoch)")
        print("| parameter | median sqrt(v) | median wd·|θ| | ratio |\n|---|---:|---:|---:|")
        for pname, grad, decay in grad_scale(name, args.root, args.rows):
            print(f"| {pname} | {grad:.2e} | {decay:.2e} | {grad / decay if decay else float('inf'):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
