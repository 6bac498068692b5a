"""Benchmark: MC dropout with the encoder split at its first dropout module, against
running the whole encoder for every draw (the same draws, timed in the same run).

``predict(x, samples=K, dropout=True)`` runs the encoder's part before its first
dropout module once and only the rest per draw (``dropout_split`` of the MLP encoder
and of a user's ``nn.Sequential``). Two encoders: the small CNN of
``examples/images_hierarchy.py`` with dropout on its 128 features (the split saves the
whole CNN), and an MLP encoder 64 -> [256, 256] with dropout after each hidden layer (it
saves the first layer only). Median of interleaved repeats, ratio of back-to-back pairs.

Run:
    python benchmarks/mc_dropout_speed.py --out benchmarks/results/mc_dropout_speed.md
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))

import taskgraph as tg  # noqa: E402
from _common import compare, emit, fmt_time, machine_info, paired_ratio  # noqa: E402
from images_hierarchy import cnn  # noqa: E402


def case(model, x: torch.Tensor, samples: int, repeat: int) -> tuple[str, str, float, float]:
    """(whole, split, ratio, max |difference|) for one model."""
    encoder = model.encoder
    split = encoder.dropout_split

    def run(with_split: bool):
        encoder.dropout_split = split if with_split else (lambda: None)
        torch.manual_seed(1)  # the same draws for both
        return model.predict(x, samples=samples, dropout=True)

    diff = max(float((run(True)[t].probs - run(False)[t].probs).abs().max())
               for t in model.hierarchy.task_names)
    times = compare({"whole": lambda: run(False), "split": lambda: run(True)},
                    warmup=1, repeat=repeat)
    encoder.dropout_split = split
    return (fmt_time(times["whole"].median), fmt_time(times["split"].median),
            paired_ratio(times["whole"], times["split"]), diff)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    root = os.path.join(HERE, "..", "hierarchies")
    fashion = tg.compile(os.path.join(root, "fashion.yaml"),
                         encoder=nn.Sequential(cnn(), nn.Dropout(0.25)), encoder_dim=128,
                         task_dim=32)
    mlp = tg.compile(os.path.join(root, "cell_functions.yaml"), in_features=64, task_dim=16,
                     encoder_spec={"hidden": [256, 256], "dropout": 0.5})
    rows = [("CNN + dropout on its features, fashion.yaml (3 tasks)", fashion,
             torch.randn(args.batch, 1, 28, 28)),
            ("MLP 64 -> [256, 256], dropout after each layer, cell_functions.yaml (7 tasks)",
             mlp, torch.randn(args.batch, 64))]
    lines = ["# MC dropout: the encoder split at its first dropout module", "",
             f"`python benchmarks/mc_dropout_speed.py --samples {args.samples} --batch "
             f"{args.batch} --repeat {args.repeat} --threads {args.threads}`", "",
             *[f"- {line}" for line in machine_info(args.seed)], "",
             f"predict(x, samples={args.samples}, dropout=True) on B={args.batch} rows; "
             "'whole': the encoder runs for every draw; 'split': its part before the first "
             "dropout runs once. Same seed, same draws.", "",
             "| encoder | whole | split | ratio | max abs. probability difference |",
             "|---|---:|---:|---:|---:|"]
    for name, model, x in rows:
        whole, split, ratio, diff = case(model, x, args.samples, args.repeat)
        lines.append(f"| {name} | {whole} | {split} | {ratio:.2f}x faster | {diff:.1e} |")
    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
