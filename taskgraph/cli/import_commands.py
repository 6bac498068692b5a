"""``taskgraph import arff|obo|wordnet|icd10cm``: real hierarchies as schema-v1 YAML.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers()
    >>> add_import(sub).prog.endswith("import")
    True
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_import", "run_import"]


def add_import(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("import", help="import a hierarchy (HMC ARFF, OBO, WordNet, ICD-10-CM)",
                       description="Turn a real hierarchy into a validated schema-v1 YAML "
                       "file of binary label tasks (coherent).")
    kinds = p.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True
    arff = kinds.add_parser("arff", help="the class hierarchy of an HMC .arff(.gz) file")
    arff.add_argument("file", metavar="FILE")
    obo = kinds.add_parser("obo", help="an OBO ontology (Gene Ontology, HPO)")
    obo.add_argument("file", metavar="FILE")
    obo.add_argument("--part-of", action="store_true", help="also follow part_of links")
    wn = kinds.add_parser("wordnet", help="WordNet noun hypernyms (Debian wordnet-base)")
    wn.add_argument("file", metavar="FILE", nargs="?", default="/usr/share/wordnet/data.noun")
    icd = kinds.add_parser("icd10cm", help="ICD-10-CM codes (tabular XML; default: the one "
                           "the optional package simple-icd-10-cm ships)")
    icd.add_argument("file", metavar="XML", nargs="?", default=None)
    icd.add_argument("--no-extensions", dest="extensions", action="store_false",
                     help="leave out the 7th-character extended codes")
    for k in (arff, obo, wn, icd):
        k.add_argument("-o", "--out", metavar="OUT", help="YAML file to write (default: "
                       "stdout; missing folders are created)")
        k.add_argument("--name", help="the hierarchy's name (default: from the file name)")
    p.set_defaults(run=run_import)
    return p


def run_import(args: argparse.Namespace) -> int:
    from taskgraph import importers
    from taskgraph.cli.options import output_file

    if args.out:  # checked before a long import
        output_file(args.out)
    if args.kind == "arff":
        h = importers.import_arff(args.file, name=args.name)
    elif args.kind == "obo":
        h = importers.import_obo(args.file, part_of=args.part_of, name=args.name)
    elif args.kind == "icd10cm":
        h = importers.import_icd10cm(args.file, extensions=args.extensions,
                                     name=args.name or "icd10cm")
    else:
        h = importers.import_wordnet(args.file, name=args.name or "wordnet_nouns")
    if args.out:
        h.to_yaml(args.out)
        print(f"wrote {args.out}: {len(h)} tasks, {h.graph.number_of_edges()} edges, "
              f"{len(h.roots)} root(s)", file=sys.stderr)
    else:
        sys.stdout.write(h.to_yaml())
    return 0
