"""The first code cell of every notebook: it installs the lab where the lab is missing.

In a clone of the repository, or wherever ``labutils`` is installed, the cell does nothing.
Elsewhere (Colab, a course JupyterHub, Kaggle: torch preinstalled, no clone) it runs
``%pip install --no-deps`` from the package source written into the cell, ``LABUTILS_PACKAGE``,
which the environment variable of the same name overrides, then installs only the requirements
that are missing altogether. Nothing already installed is upgraded: a hosted kernel's torch is
a large CUDA build that must stay as it is, and its other packages (ipykernel above all) are
pinned by the host, which asks for a restart, or breaks, when pip replaces them.

The instructor writes the source once for a class: ``make student PACKAGE=URL`` (or
``python -m labutils student --package URL``) sets it in every student notebook.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where a notebook is edited: the cell itself needs only the above
    import nbformat

CELL_ID = "install-the-lab"
VARIABLE = "LABUTILS_PACKAGE"
PACKAGE_COMMENT = "# where the lab is installed from outside its repository: a wheel's URL"
KEPT = ("torch", "torchvision")  # pinned to the installed versions when pip adds anything
# The cell's code, as ruff formats it (the notebooks are linted). An instructor's package source
# changes one line, the assignment to LABUTILS_PACKAGE.
SOURCE = """\
# Outside the lab's repository (Colab, a JupyterHub) this cell installs the lab, and only those
# packages it needs that are missing: torch and all that is installed stay as they are. Where the
# lab is installed it does nothing.
import importlib.util
import os

LABUTILS_PACKAGE = ""  # where the lab is installed from outside its repository: a wheel's URL
if importlib.util.find_spec("labutils") is None:
    package = os.environ.get("LABUTILS_PACKAGE") or LABUTILS_PACKAGE
    print(f"Installing the lab from {package!r} ...")
    if package:
        %pip install --quiet --no-deps "{package}"
    importlib.invalidate_caches()
    if importlib.util.find_spec("labutils") is None:
        raise ModuleNotFoundError(
            f"The lab (labutils) could not be installed from {package!r}. Read pip's message "
            "above, if any; set LABUTILS_PACKAGE in this cell to the address your instructor "
            "gave (a .whl URL or git+https://...); then restart the kernel and run this again."
        )
    from labutils.course import install_cell

    install_cell.install_missing_requirements()"""
_PACKAGE_LINE = re.compile(rf"^{VARIABLE} = .*$", re.MULTILINE)


def package_line(package: str) -> str:
    """The cell's line that names where the lab is installed from."""
    return f"{VARIABLE} = {json.dumps(package)}  {PACKAGE_COMMENT}"


def install_cell_source(package: str = "") -> str:
    """The install cell's code, installing from ``package`` (empty: the environment's only)."""
    return _PACKAGE_LINE.sub(lambda _: package_line(package), SOURCE, count=1)


def make_install_cell(package: str = "") -> nbformat.NotebookNode:
    """A new install cell, stored clean."""
    import nbformat

    cell = nbformat.v4.new_code_cell(install_cell_source(package))
    cell.id = CELL_ID
    return cell


def find_install_cell(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    """The notebook's first code cell if it is the install cell, else None."""
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    if code and _PACKAGE_LINE.search(code[0].source):
        return code[0]
    return None


def package_source(notebook: nbformat.NotebookNode) -> str | None:
    """The package source written into the notebook's install cell; None without one."""
    cell = find_install_cell(notebook)
    if cell is None:
        return None
    assignment = _PACKAGE_LINE.search(cell.source).group(0)
    return json.loads(assignment.split("=", 1)[1].split("#", 1)[0].strip())


def set_package_source(notebook: nbformat.NotebookNode, package: str, name: str = "") -> None:
    """Write ``package`` into the notebook's install cell, in place."""
    cell = find_install_cell(notebook)
    if cell is None:
        raise ValueError(
            f"The notebook {name} has no install cell (a first code cell with "
            f"{VARIABLE} = ...), so a package source cannot be written into it: add "
            f"labutils.course.install_cell.make_install_cell() before its imports."
        )
    cell.source = _PACKAGE_LINE.sub(lambda _: package_line(package), cell.source, count=1)


# --------------------------------------------------------------------------- run by the cell


def normalized(name: str) -> str:
    """A distribution's name as pip compares names (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def missing_requirements(requirements: list[str], installed: set[str]) -> list[str]:
    """The requirements (no extras) whose distribution is not installed in any version."""
    missing = []
    for requirement in requirements:
        if "extra ==" in requirement:
            continue
        name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
        if normalized(name) not in installed:
            missing.append(requirement.split(";")[0].strip())
    return missing


def install_missing_requirements(distribution: str = "labutils") -> list[str]:
    """pip install what ``distribution`` needs and is missing, keeping torch; return that."""
    versions = {normalized(d.name): d.version for d in importlib.metadata.distributions()}
    missing = missing_requirements(importlib.metadata.requires(distribution) or [], set(versions))
    kept = [f"{name}=={versions[name]}" for name in KEPT if name in versions]
    if missing:
        print(f"Installing what the lab needs and is missing: {', '.join(missing)}")
        command = [sys.executable, "-m", "pip", "install", "--quiet", *missing, *kept]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"pip could not install {', '.join(missing)} beside {', '.join(kept)}:\n"
                f"{result.stderr[-2000:]}\nInstall them with %pip install, then run the cell again."
            )
        importlib.invalidate_caches()
    print(
        f"The lab is installed (no need to restart the kernel); kept as they were: "
        f"{', '.join(kept) or 'no torch'}."
    )
    return missing
