"""Gene function on the Gene Ontology: coherent predictions with MC uncertainty.

The HMC data sets (Vens et al. 2008, as redistributed with C-HMCNN) annotate yeast genes
with Gene Ontology terms: a DAG of about 4,000 yes/no tasks, where a gene with a term
also has all of its ancestors. ``taskgraph.recipes.hmc.train_hmc`` trains taskgraph's
default recipe on one of them (MLP encoder, message passing down and up the DAG over gaussian
synapses, coherence: a parent term is never less likely than a child term), choosing
the epoch on the valid split. Then, for three test genes, the synapses are sampled 16
times (``model.predict(x, samples=16)``) and the five most probable GO terms are printed
with their probability, its std over the samples and the mutual information (the
model's own, epistemic uncertainty). Root terms are left out, as in the benchmark.

Data: ``../shared/data/hmc`` (relative to the repository root) holding
``NAME.{train,valid,test}.arff.gz``, or ``--root DIR``; ``--name`` picks the data set.

Run:
    python examples/gene_ontology.py [--name cellcycle_GO] [--root DIR] [--epochs 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import numpy as np
import torch

from taskgraph.datasets.hmc import ROOTS, load_hmc
from taskgraph.recipes.hmc import train_hmc

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                     "shared", "data", "hmc"))


def head(split, n: int):
    return dataclasses.replace(split, X=split.X[:n], Y=split.Y[:n])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=ROOT, help="folder with the HMC .arff.gz files")
    parser.add_argument("--name", default="cellcycle_GO")
    parser.add_argument("--epochs", type=int, default=None, help="cap (default: the recipe's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="a subset, a smaller encoder, 3 epochs, one thread")
    parser.add_argument("--out", default="example-output/gene_ontology")
    args = parser.parse_args()
    splits = ("train", "valid", "test")
    if not all(os.path.exists(os.path.join(args.root, f"{args.name}.{s}.arff.gz")) for s in splits):
        print(f"The HMC data set {args.name!r} is not in {args.root} (expected "
              f"{args.name}.train/valid/test.arff.gz).\nPut the HMC data sets there or pass "
              "--root DIR (and --name NAME, e.g. cellcycle_GO).", file=sys.stderr)
        sys.exit(2)
    overrides, train_overrides = {}, {}
    if args.quick:
        torch.set_num_threads(1)
        args.epochs = 3
        overrides = {"encoder_spec": {"hidden": [128], "dropout": 0.5}}
        train_overrides = {"batch_size": 64, "lr": 3e-3}
    os.makedirs(args.out, exist_ok=True)

    data = load_hmc(args.name, args.root).preprocessed()
    if args.quick:
        data = dataclasses.replace(data, train=head(data.train, 512), valid=head(data.valid, 200),
                                   test=head(data.test, 300))
    h = data.hierarchy
    print(f"{args.name}: {len(h)} GO terms, {h.graph.number_of_edges()} edges; {len(data.train.X)}"
          f" train / {len(data.valid.X)} valid / {len(data.test.X)} test genes")
    result = train_hmc(data, seed=args.seed, epochs=args.epochs, progress=False,
                       overrides=overrides, train_overrides=train_overrides)
    print(f"trained {len(result.history)} epochs in {result.seconds:.0f} s; AU(PRC)-bar: valid "
          f"{result.valid_auprc:.3f}, test {result.test_auprc:.3f}")
    print(f"coherence violations on the test set (a child term more probable than its parent):"
          f" {result.violations}")

    model = result.model
    genes = [0, 1, 2]
    pred = model.predict(torch.as_tensor(data.test.X[genes]), samples=16)
    terms = [t for t in h.task_names if t not in ROOTS]
    fields = {f: torch.stack([getattr(pred[t], f) for t in terms], 1).numpy()
              for f in ("probs", "std", "mutual_info")}  # each (3, T)
    lines = []
    for row, gene in enumerate(genes):
        true = {h.task_names[j] for j in np.flatnonzero(data.test.Y[gene])} - set(ROOTS)
        lines.append(f"\ntest gene {gene} ({len(true)} true terms): top 5 of 16 MC samples")
        lines.append(f"  {'GO term':<12} {'prob':>6} {'std':>7} {'MI (nats)':>10}  true?")
        for j in np.argsort(-fields["probs"][row])[:5]:
            lines.append(f"  {terms[j]:<12} {fields['probs'][row, j]:>6.3f} "
                         f"{fields['std'][row, j]:>7.4f} {fields['mutual_info'][row, j]:>10.5f}"
                         f"  {'yes' if terms[j] in true else 'no'}")
    index = {t: j for j, t in enumerate(h.task_names)}
    all_probs = torch.stack([pred[t].probs for t in h.task_names], 1)  # (3, T)
    edges = torch.tensor([[index[p], index[c]] for p, c in h.graph.edges])
    bad = int((all_probs[:, edges[:, 1]] > all_probs[:, edges[:, 0]] + 1e-6).sum())
    lines.append(f"\ncoherence violations in the sampled predictions of these genes: {bad}")
    print("\n".join(lines))
    path = os.path.join(args.out, "top_terms.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines).lstrip() + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
