"""``taskgraph draw`` and ``taskgraph report``: pictures and the HTML run report.

``draw FILE`` takes a hierarchy YAML or a saved model (``.pt``) and writes a picture
whose format follows the extension of ``-o`` (.png, .svg, .pdf or Graphviz .dot).
``report RUN_DIR`` writes one self-contained HTML page about a ``taskgraph train`` or
``taskgraph demo`` folder. Both keep torch and matplotlib imports inside the command.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers()
    >>> add_draw(sub).prog.endswith("draw"), add_report(sub).prog.endswith("report")
    (True, True)
    >>> args = parser.parse_args(["draw", "h.yaml", "--depth", "2"])
    >>> args.depth, args.max_nodes, args.directions, args.overview
    (2, 200, 'down', None)
    >>> parser.parse_args(["draw", "h.yaml", "--no-overview"]).overview
    False
"""

from __future__ import annotations

import argparse
import os
import pathlib
from typing import Any

from taskgraph.cli.options import integer, output_file

__all__ = ["add_draw", "add_report", "run_draw", "run_report", "default_output"]

_MODEL_EXTENSIONS = (".pt", ".pth")


def add_draw(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "draw", help="draw a hierarchy or a trained model's task graph",
        description="Draw the task graph of a hierarchy YAML or of a saved model (.pt, "
        "with its learned synapses). A hierarchy of more than 60 tasks is drawn as an "
        "overview of the top levels that fit a screen ('+N' under a task counts its "
        "undrawn descendants); --root and --depth draw a subtree.")
    p.add_argument("file", metavar="FILE", help="hierarchy YAML or saved model (.pt)")
    p.add_argument("-o", "--out", metavar="OUT",
                   help="output file; its extension picks .png, .svg, .pdf or .dot "
                   "(default: FILE's name with .png, in the current folder); missing "
                   "folders are created")
    p.add_argument("--root", metavar="TASK", help="draw only TASK and its descendants")
    p.add_argument("--depth", type=integer(low=0), metavar="N",
                   help="draw only N levels below the root(s)")
    p.add_argument("--max-nodes", type=integer(low=1), default=200, metavar="N",
                   help="most boxes in one picture (default 200)")
    p.add_argument("--directions", choices=["down", "up", "both"], default="down",
                   help="with a model: which synapses the edges show (default down)")
    p.add_argument("--no-overview", dest="overview", action="store_false", default=None,
                   help="a hierarchy of more than 60 tasks is drawn as a screen-wide "
                   "overview of its top levels (at most 1,600 px, '+N' under a task for "
                   "its undrawn descendants); this draws the collapsed view of up to "
                   "--max-nodes boxes instead")
    p.add_argument("--title", help="figure title (default: the hierarchy's name)")
    p.set_defaults(run=run_draw)
    return p


def add_report(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "report", help="write a self-contained HTML report of a run folder",
        description="One HTML page (images and styles inline, no scripts or links) with "
        "the task graph, metrics, training curves, calibration and synapses of a folder "
        "written by 'taskgraph train' or 'taskgraph demo'.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("-o", "--out", metavar="OUT", help="HTML file (default RUN_DIR/report.html; "
                   "missing folders are created)")
    p.add_argument("--data", metavar="FILE",
                   help="labelled data (.csv, .npz) for reliability diagrams and "
                   "risk-coverage curves")
    p.add_argument("--samples", type=integer(low=0), default=0,
                   help="MC samples for those figures (default 0)")
    p.add_argument("--title", help="page title (default: the hierarchy's name)")
    p.set_defaults(run=run_report)
    return p


def default_output(file: str) -> str:
    """``FILE``'s name with ``.png`` instead of its extension, in the current folder.

    >>> default_output("hierarchies/animals.yaml")
    'animals.png'
    """
    return pathlib.Path(file).stem + ".png"


def _source(file: str) -> Any:
    import taskgraph as tg

    if file.lower().endswith(_MODEL_EXTENSIONS):
        if not os.path.exists(file):
            raise FileNotFoundError(2, "No such file or directory", file)
        return tg.load(file)
    return tg.load_hierarchy(pathlib.Path(file))


def run_draw(args: argparse.Namespace) -> int:
    from taskgraph.viz import check_output, draw

    out = args.out or default_output(args.file)
    check_output(out)  # a bad extension is reported before any loading
    output_file(out)
    drawing = draw(_source(args.file), out, root=args.root, depth=args.depth,
                   max_nodes=args.max_nodes, title=args.title, directions=args.directions,
                   overview=args.overview)
    g = drawing.view.graph
    note = ""
    if g.get("overview"):
        note = (f"; overview of the top levels of {g['total']:,} tasks, {g['hidden']:,} "
                "not drawn ('+N' under a task; --root/--depth for the rest, --no-overview "
                "for the collapsed view)")
    elif g.get("collapsed"):
        note = (f"; collapsed view: {g['hidden']:,} of {g['total']:,} tasks in "
                f"{g['boxes']} '+N tasks' boxes (use --root/--depth for the rest)")
    print(f"wrote {out}: {g['shown']:,} tasks{note}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from taskgraph.errors import DataError
    from taskgraph.viz import write_report

    if not os.path.isdir(args.run_dir):
        if os.path.exists(args.run_dir):
            raise DataError(f"RUN_DIR {args.run_dir}: is a file; name the folder written by "
                            "'taskgraph train' or 'taskgraph demo'")
        raise FileNotFoundError(2, "No such directory", args.run_dir)
    if args.out:
        output_file(args.out)
    model = loader = None
    if args.data:
        import taskgraph as tg
        from taskgraph.datasets import read_table
        from taskgraph.train import make_loader

        checkpoint = os.path.join(args.run_dir, "model.pt")
        if not os.path.exists(checkpoint):
            raise DataError(f"--data needs a model: {checkpoint} does not exist")
        model = tg.load(checkpoint)
        loader = make_loader(read_table(args.data, model.hierarchy), batch_size=256,
                             shuffle=False)
    out = write_report(args.run_dir, args.out, model=model, data=loader,
                       samples=args.samples, title=args.title)
    print(f"wrote {out}")
    return 0
