"""The first code cell of every notebook: it installs the lab where the lab is missing.

In a clone of the repository, or wherever ``labutils`` is installed, the cell does nothing.
Elsewhere (Colab, a course JupyterHub, Kaggle: torch preinstalled, no clone) it runs
``%pip install`` from the package source written into the cell, ``LABUTILS_PACKAGE``, which
the environment variable of the same name overrides. It pins torch and torchvision to the
versions already installed, so pip keeps them (a CUDA build of torch is large, and a second
copy could break the kernel) or stops with a message if the lab cannot use them.

The instructor writes the source once for a class: ``make student PACKAGE=URL`` (or
``python -m labutils student --package URL``) sets it in every student notebook.
"""

from __future__ import annotations

import json
import re

import nbformat

CELL_ID = "install-the-lab"
VARIABLE = "LABUTILS_PACKAGE"
PACKAGE_COMMENT = "# where the lab is installed from outside its repository: a wheel's URL"
# The cell's code, as ruff formats it (the notebooks are linted). An instructor's package source
# changes one line, the assignment to LABUTILS_PACKAGE.
SOURCE = """\
# Outside the lab's repository (Colab, a JupyterHub) this cell installs the lab, keeping the
# torch and torchvision already installed. Where the lab is installed it does nothing.
import importlib.metadata
import importlib.util
import os

LABUTILS_PACKAGE = ""  # where the lab is installed from outside its repository: a wheel's URL
if importlib.util.find_spec("labutils") is None:
    package = os.environ.get("LABUTILS_PACKAGE") or LABUTILS_PACKAGE
    versions = {dist.name: dist.version for dist in importlib.metadata.distributions()}
    pins = [f"{name}=={versions[name]}" for name in ("torch", "torchvision") if name in versions]
    keep = " ".join(pins)
    print(f"Installing the lab from {package!r}, keeping {keep or 'no torch'} as it is")
    if package:
        %pip install --quiet "{package}" {keep}
    importlib.invalidate_caches()
    if importlib.util.find_spec("labutils") is None:
        raise ModuleNotFoundError(
            f"The lab (labutils) is not installed and could not be installed from {package!r}: "
            "set LABUTILS_PACKAGE in this cell to the address your instructor gave (a .whl URL "
            "or git+https://...), read pip's message above if any, and run this cell again."
        )
    print("The lab is installed: no need to restart the kernel.")"""
_PACKAGE_LINE = re.compile(rf"^{VARIABLE} = .*$", re.MULTILINE)


def package_line(package: str) -> str:
    """The cell's line that names where the lab is installed from."""
    return f"{VARIABLE} = {json.dumps(package)}  {PACKAGE_COMMENT}"


def install_cell_source(package: str = "") -> str:
    """The install cell's code, installing from ``package`` (empty: the environment's only)."""
    return _PACKAGE_LINE.sub(lambda _: package_line(package), SOURCE, count=1)


def make_install_cell(package: str = "") -> nbformat.NotebookNode:
    """A new install cell, stored clean."""
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
