"""Layer 6: the ``taskgraph`` command line. It calls the public API only."""

from taskgraph.cli.main import main

__all__ = ["main"]
