"""Make a valid split for an HMC set published as train and test files only.

Some HMC sets (C-HMCNN's "others": Diatoms, Enron, ImCLEF07A/D) come as a train (or
train + valid) file and a test file. :mod:`taskgraph.datasets.hmc` reads
``NAME.{train,valid,test}.arff.gz``, so this script holds out a fraction of the train
file's data rows as valid: the rows are shuffled with ``random.Random(seed)``, the
first ``round(fraction * rows)`` of them become valid, and both parts keep the file's
order and its header. The test file is copied unchanged. Comments and blank lines
among the rows are dropped.

Run:
    python benchmarks/split_hmc.py Enron_corr_trainvalid.arff Enron_corr_test.arff \\
        --name enron_corr --out /tmp/others [--fraction 0.2] [--seed 0]
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import sys


def read_text(path: str) -> str:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return fh.read()


def split_rows(text: str, fraction: float, seed: int) -> tuple[list[str], list[str], list[str]]:
    """``(header lines up to @DATA, train rows, valid rows)`` of an ARFF text.

    Example:
        >>> head, train, valid = split_rows("@RELATION r\\n@DATA\\n1\\n2\\n3\\n4\\n5\\n", 0.4, 0)
        >>> head, sorted(train + valid), len(valid)
        (['@RELATION r', '@DATA'], ['1', '2', '3', '4', '5'], 2)
    """
    lines = text.splitlines()
    at = next((i for i, line in enumerate(lines) if line.strip().upper().startswith("@DATA")),
              None)
    if at is None:
        raise ValueError("no @DATA line")
    rows = [line for line in lines[at + 1:] if line.strip() and not line.startswith("%")]
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    held = set(order[:int(round(fraction * len(rows)))])
    return (lines[:at + 1], [r for i, r in enumerate(rows) if i not in held],
            [r for i, r in enumerate(rows) if i in held])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="hold out a valid split of an HMC train file")
    p.add_argument("train")
    p.add_argument("test")
    p.add_argument("--name", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    head, train, valid = split_rows(read_text(args.train), args.fraction, args.seed)
    os.makedirs(args.out, exist_ok=True)
    for split, text in (("train", "\n".join(head + train) + "\n"),
                        ("valid", "\n".join(head + valid) + "\n"),
                        ("test", read_text(args.test))):
        with gzip.open(os.path.join(args.out, f"{args.name}.{split}.arff.gz"), "wt",
                       encoding="utf-8") as fh:
            fh.write(text)
    print(f"{args.name}: {len(train)} train / {len(valid)} valid rows -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
