"""Collect the doctests of the taskgraph package (and only there).

pytest's ``--doctest-modules`` would also import every ``conftest.py`` under ``tests/``
as a module; several share that name, which breaks collection when test folders are
given together. Collecting doctests here keeps ``python -m pytest`` one command.
"""

from __future__ import annotations

from pathlib import Path

from _pytest.doctest import DoctestModule

PACKAGE = Path(__file__).parent / "taskgraph"


def pytest_collect_file(file_path: Path, parent):  # noqa: ANN001 - pytest hook
    if (file_path.suffix == ".py" and PACKAGE in file_path.parents
            and file_path.name != "__main__.py"):
        return DoctestModule.from_parent(parent, path=file_path)
    return None
