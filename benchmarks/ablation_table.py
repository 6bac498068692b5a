"""Merge the per-seed ablation results of several ``benchmarks/hmc.py --ablations`` runs
(their printed logs, e.g. seeds run in parallel processes) into one table: mean ± std
over seeds per variant, and the paired difference full − variant with a paired t-test.

Run:
    python benchmarks/ablation_table.py benchmarks/results/hmc_ablations_elbo_*.log \\
        --out benchmarks/results/hmc_ablations_elbo.md
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from collections import defaultdict

SEED = re.compile(r"^\s*(\S+) seed (\d+): test AU\(PRC\)-bar ([0-9.]+)")
RARE = re.compile(r"^\s*(\S+) seed (\d+): rarest third ([0-9.]+)")
RARE_SUFFIX = " rarest third"
ABLATION = re.compile(r"^\s{4}([a-z ]+): ([0-9.]+)$")


def parse(paths: list[str]) -> dict[str, dict[int, dict[str, float]]]:
    """``{data set: {seed: {variant: test AU(PRC)-bar}}}`` (variant "full model" first;
    ``"VARIANT rarest third"``: the score on the rarest third of labels, where logged)."""
    out: dict[str, dict[int, dict[str, float]]] = defaultdict(dict)
    for path in paths:
        name = seed = None
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                m = SEED.match(line)
                if m:
                    name, seed = m.group(1), int(m.group(2))
                    out[name][seed] = {"full model": float(m.group(3))}
                    continue
                m = RARE.match(line)
                if m and name is not None:
                    out[name][seed]["full model" + RARE_SUFFIX] = float(m.group(3))
                    continue
                m = ABLATION.match(line.rstrip("\n"))
                if m and name is not None:
                    out[name][seed][m.group(1)] = float(m.group(2))
    return out


def fmt(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f} (1 seed)"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def table(results: dict[str, dict[int, dict[str, float]]], paths: list[str]) -> list[str]:
    from scipy.stats import ttest_rel

    lines = ["# HMC ablations, merged over runs", "",
             "`python benchmarks/ablation_table.py " + " ".join(paths) + "`", "",
             "Test AU(PRC)-bar, mean ± std (sample std) over the seeds listed; paired "
             "differences full − variant on the same seeds, paired t-test.", ""]
    for name, seeds in results.items():
        for suffix, what in (("", "all evaluated labels"),
                             (RARE_SUFFIX, "the rarest third of labels (fewest training "
                                           "positives)")):
            # the seeds with every variant of this table (logs of older runs lack the
            # rarest third, and a stopped run may lack the last variants)
            of_kind = {s: [v for v in r if v.endswith(RARE_SUFFIX) == bool(suffix)]
                       for s, r in seeds.items()}
            most = max(len(v) for v in of_kind.values())
            if most == 0:
                continue
            order = sorted(s for s, v in of_kind.items() if len(v) == most)
            complete = {s: seeds[s] for s in order}
            names = of_kind[order[0]]
            lines += [f"## {name}: {what} (seeds {', '.join(map(str, order))})", "",
                      "| variant | test AU(PRC)-bar | full − variant | paired t-test p |",
                      "|---|---:|---:|---:|"]
            full = [complete[s]["full model" + suffix] for s in order]
            for v in names:
                vals = [complete[s][v] for s in order]
                label = v[:len(v) - len(suffix)] if suffix else v
                if label == "full model":
                    lines.append(f"| {label} | {fmt(vals)} | – | – |")
                    continue
                diff = [f - x for f, x in zip(full, vals)]
                p = ttest_rel(full, vals).pvalue if len(vals) > 1 else float("nan")
                lines.append(f"| {label} | {fmt(vals)} | {fmt(diff)} | {p:.3g} |")
            lines.append("")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+")
    parser.add_argument("--out", default=None)
    parser.add_argument("--note", default=None, help="a paragraph put under the heading "
                        "(e.g. which protocol each log used)")
    args = parser.parse_args()
    lines = table(parse(args.logs), args.logs)
    if args.note:
        lines[4:4] = [args.note, ""]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
