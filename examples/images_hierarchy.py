"""Images with a label hierarchy: Fashion-MNIST when only 1 % of images name the item.

``hierarchies/fashion.yaml`` puts the ten articles under a group (upper, lower, ...)
under a kind (clothing, footwear, bag). Every training image keeps its kind and group
(derived from the item via the hierarchy's ``class_parents``); only 1 % keep the item
label, the rest is -1 (missing). A small CNN is the encoder:
``tg.compile(h, encoder=cnn, encoder_dim=128)``. Compared on the test items, with the same
CNN and the same number of batches (about half of each drawn from the item-labelled
images): **hierarchical** (all three tasks, every image) vs. **flat** (the item task
alone, as a one-task hierarchy, on the 1 %).

Data: Debian's ``dataset-fashion-mnist`` (``apt-get install dataset-fashion-mnist``,
``/usr/share/datasets/fashion-mnist``) or ``--data DIR`` with its four ``*-ubyte.gz``
files. Uses a GPU when there is one.

Run:
    python examples/images_hierarchy.py [--epochs 3] [--labelled 0.01] [--out example-output/]
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import sys

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, WeightedRandomSampler

import taskgraph as tg
from taskgraph.train import make_loader

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATA = "/usr/share/datasets/fashion-mnist"
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def read_idx(path: str) -> np.ndarray:
    """An IDX file: 2 zero bytes, a type byte, ndim, ndim big-endian int32 sizes, data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    shape = np.frombuffer(raw, dtype=">i4", count=raw[3], offset=4)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * raw[3]).reshape(shape)


def has_fashion(folder: str) -> bool:
    """Whether ``folder`` holds the four Fashion-MNIST files."""
    return all(os.path.exists(os.path.join(folder, f)) for p in FILES.values() for f in p)


def load_split(folder: str, split: str) -> tuple[torch.Tensor, np.ndarray]:
    images, labels = (read_idx(os.path.join(folder, f)) for f in FILES[split])
    return torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1), labels.astype(int)


def cnn() -> nn.Module:
    """(B, 1, 28, 28) -> (B, 128)."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 16, 14, 14)
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 7, 7)
        nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU())


def train_and_score(h, train_targets, test_targets, x_train, x_test, labelled, steps,
                    args) -> float:
    """Train for exactly ``steps`` batches of 64; half of each batch, on average, is drawn
    from the ``labelled`` rows (the images with an item label), the rest from all rows."""
    torch.manual_seed(args.seed)
    model = tg.compile(h, encoder=cnn(), encoder_dim=128, task_dim=32).to(args.device)
    data = tg.TaskDataset(x_train, train_targets, h)
    weight = np.full(len(data), 0.5 / len(data))
    weight[labelled] += 0.5 / len(labelled)
    sampler = WeightedRandomSampler(weight.tolist(), num_samples=64 * steps,
                                    generator=torch.Generator().manual_seed(args.seed))
    tg.fit(model, DataLoader(data, batch_size=64, sampler=sampler), epochs=1, lr=2e-3,
           progress=False, seed=args.seed)
    test = make_loader(tg.TaskDataset(x_test, test_targets, h), batch_size=512, shuffle=False)
    return tg.evaluate(model, test).tasks["item"]["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DATA, help="folder with the Fashion-MNIST files")
    parser.add_argument("--labelled", type=float, default=0.01, help="fraction with items")
    parser.add_argument("--train-size", type=int, default=60_000)
    parser.add_argument("--test-size", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=3, help="length, in passes over the data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="3,000 images, 1 epoch, one thread")
    parser.add_argument("--out", default="example-output/images_hierarchy")
    args = parser.parse_args()
    if args.quick:
        torch.set_num_threads(1)
        args.train_size, args.test_size, args.epochs = 3000, 1000, 1
    if not has_fashion(args.data):
        print(f"Fashion-MNIST is not in {args.data}. Install it with:\n"
              "    apt-get install dataset-fashion-mnist\n"
              "or pass --data DIR holding its four *-ubyte.gz files.", file=sys.stderr)
        sys.exit(2)
    os.makedirs(args.out, exist_ok=True)

    h = tg.load_hierarchy(os.path.join(ROOT, "hierarchies", "fashion.yaml"))
    items = h["item"].classes
    to_group = dict(dict(h["item"].class_parents)["group"])
    to_kind = dict(dict(h["group"].class_parents)["kind"])
    rng = np.random.default_rng(args.seed)
    (x_train, y_train), (x_test, y_test) = (load_split(args.data, s) for s in FILES)
    pick = rng.permutation(len(y_train))[:args.train_size]
    x_train, y_train, x_test, y_test = (x_train[pick], y_train[pick], x_test[:args.test_size],
                                        y_test[:args.test_size])

    # 1 % of each class keeps its item label (at least one image per class)
    keep = np.concatenate([rng.permutation(np.flatnonzero(y_train == c))[
        :max(1, round(args.labelled * (y_train == c).sum()))] for c in range(len(items))])
    item = np.full(len(y_train), -1)
    item[keep] = y_train[keep]
    names = [items[c] for c in y_train]
    coarse = {"group": [to_group[n] for n in names], "kind": [to_kind[to_group[n]] for n in names]}
    print(f"{len(y_train)} training images, all with kind and group labels; {len(keep)} "
          f"({len(keep) / len(y_train):.1%}) with an item label; {len(y_test)} test images; "
          f"device {args.device}")

    steps = args.epochs * math.ceil(len(y_train) / 64)
    flat = {"taskgraph": 1, "name": "fashion_flat",
            "tasks": {"item": {"type": "multiclass", "classes": list(items)}}}
    acc_flat = train_and_score(tg.load_hierarchy(flat), {"item": item[keep]}, {"item": y_test},
                               x_train[keep], x_test, np.arange(len(keep)), steps, args)
    acc_hier = train_and_score(h, {**coarse, "item": item}, {"item": y_test},
                               x_train, x_test, keep, steps, args)
    lines = [f"item test accuracy after {steps} batches (chance {1 / len(items):.2f}):",
             f"  flat, item task on the {len(keep)} labelled images: {acc_flat:.3f}",
             f"  hierarchical, kind + group + item on all images:   {acc_hier:.3f}"]
    print("\n" + "\n".join(lines))
    path = os.path.join(args.out, "item_accuracy.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
