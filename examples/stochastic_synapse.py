"""One stochastic synapse, sampled many times: gaussian noise vs. bernoulli release.

Every edge of a taskgraph model carries a synapse whose weight is a random variable.
This example builds a bank of two synapses with :class:`taskgraph.nn.EdgeSynapses`:

* a **gaussian** synapse, ``w = mean + std * eps`` (a learned mean and spread), and
* a **bernoulli** synapse, ``w = mean * r`` with ``r ~ Bernoulli(p)``: the synapse
  releases with probability ``p``, as a biological synapse releases a vesicle or fails.

In training mode each call draws fresh weights; here we draw 10,000 of them, compare
the sample mean and std with the analytic values (gaussian: ``mean``, ``std``;
bernoulli: ``mean * p``, ``|mean| * sqrt(p (1 - p))``), and save a histogram.

Run:
    python examples/stochastic_synapse.py [--samples 10000] [--out example-output/]
"""

from __future__ import annotations

import argparse
import math
import os

import torch

from taskgraph.nn import EdgeSynapses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--mean", type=float, default=1.0)
    parser.add_argument("--std", type=float, default=0.3, help="gaussian std")
    parser.add_argument("--p", type=float, default=0.7, help="bernoulli release probability")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="one thread (runs in a second)")
    parser.add_argument("--out", default="example-output/stochastic_synapse")
    args = parser.parse_args()
    if args.quick:
        torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)

    synapses = EdgeSynapses(["gaussian", "bernoulli"], mean=args.mean, std=args.std, p=args.p)
    print(synapses)
    synapses.train()  # training mode: every row is a fresh draw of both synapses
    with torch.no_grad():
        w = synapses(args.samples)  # (samples, 2)
        expected_mean = synapses.mean_weight()  # (2,)
        expected_std = synapses.std_weight()  # (2,)
        eval_weight = synapses.eval()(None)  # (2,) evaluation mode: the expected weights

    analytic = {
        "gaussian": (args.mean, args.std),
        "bernoulli": (args.mean * args.p, abs(args.mean) * math.sqrt(args.p * (1 - args.p))),
    }
    print(f"\n{args.samples} draws per synapse (training mode)")
    print(f"{'kind':<10} {'sample mean':>12} {'analytic':>9} {'sample std':>11} {'analytic':>9}"
          f" {'eval-mode w':>12}")
    for j, kind in enumerate(synapses.kinds):
        m, s = analytic[kind]
        assert math.isclose(m, float(expected_mean[j]), rel_tol=1e-4)
        assert math.isclose(s, float(expected_std[j]), rel_tol=1e-4)
        print(f"{kind:<10} {w[:, j].mean().item():>12.4f} {m:>9.4f} "
              f"{w[:, j].std().item():>11.4f} {s:>9.4f} {eval_weight[j].item():>12.4f}")
    released = (w[:, 1] != 0).float().mean().item()
    print(f"bernoulli release rate: {released:.4f} (p = {args.p})")

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.2))
    FigureCanvasAgg(fig)
    for j, (kind, color) in enumerate(zip(synapses.kinds, ("tab:blue", "tab:orange"))):
        ax = fig.add_subplot(1, 2, j + 1)
        ax.hist(w[:, j].numpy(), bins=60, color=color, alpha=0.8)
        m, s = analytic[kind]
        ax.axvline(m, color="black", linestyle="--", label=f"E[w] = {m:.2f}")
        ax.set_title(f"{kind}: std {s:.3f}")
        ax.set_xlabel("synapse weight w")
        ax.legend(loc="upper left", fontsize=8)
    fig.axes[0].set_ylabel(f"count of {args.samples} draws")
    fig.tight_layout()
    path = os.path.join(args.out, "synapse_histogram.png")
    fig.savefig(path, dpi=120)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
