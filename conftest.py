"""Suite-wide pytest set-up: the doctests of the taskgraph package, and the ``slow`` mark.

Doctests: pytest's ``--doctest-modules`` would also import every ``conftest.py`` under
``tests/`` as a module; several share that name, which breaks collection when test
folders are given together. Collecting doctests here keeps ``python -m pytest`` one
command.

Slow tests: ``python -m pytest`` (the README's command, and CI's) runs everything;
``python -m pytest -m "not slow"`` is the everyday run. Which tests are slow is listed
here, in :data:`SLOW`, and nowhere else (the mark is registered in pyproject.toml): a
test that takes several seconds of a full run (measured with ``--durations``) gets a
line, its node id, where ``*`` matches any text, and the reason.
``tests/test_readme.py`` checks that every line still names a test.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _pytest.doctest import DoctestModule

PACKAGE = Path(__file__).parent / "taskgraph"

#: Node-id patterns of the tests left out of the everyday run, each with its reason.
SLOW: dict[str, str] = {
    "tests/model/test_forward.py::test_torch_compile_matches_eager": "torch.compile",
    "tests/train/test_train_distributed.py::test_two_processes_*": "two DDP processes",
    "tests/train/test_train_distributed.py::test_uncertainty_weights_stay_in_sync_*":
        "two DDP processes",
    "tests/train/test_train_distributed.py::test_pcgrad_is_refused_in_distributed_runs":
        "two DDP processes",
    "tests/test_examples.py::test_example[*]": "runs an example script",
    "tests/cli/test_cli_demo.py::test_demo_*_one_epoch": "trains on cellcycle_FUN",
    "tests/cli/test_cli_demo.py::test_demo_without_refit_*": "trains on cellcycle_FUN",
    "tests/cli/test_cli_resume.py::*": "`taskgraph train` processes, one killed and resumed",
    "tests/train/test_train_resume.py::test_resume_after_sigkill_*":
        "training processes, one killed and resumed",
    "tests/importers/test_import_icd10cm.py::test_full_release_*":
        "all 98,000 ICD-10-CM codes",
}


_SLOW = re.compile("|".join(f"(?:{'.*'.join(map(re.escape, p.split('*')))})" for p in SLOW))


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by mark
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _SLOW.fullmatch(item.nodeid):
            item.add_marker(pytest.mark.slow)


def pytest_collect_file(file_path: Path, parent):  # noqa: ANN001 - pytest hook
    if (file_path.suffix == ".py" and PACKAGE in file_path.parents
            and file_path.name != "__main__.py"):
        return DoctestModule.from_parent(parent, path=file_path)
    return None
