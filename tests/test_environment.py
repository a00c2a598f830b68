"""One environment definition, used three ways: pip, conda and the Makefile."""

import re
import tomllib
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def pyproject_requirements() -> set[str]:
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    extras = [item for group in project["optional-dependencies"].values() for item in group]
    return set(project["dependencies"]) | set(extras)


def conda_pip_requirements() -> set[str]:
    lines = (REPOSITORY / "environment.yml").read_text().splitlines()
    start = lines.index("  - pip:")
    items = [
        re.sub(r"^\s*- ", "", line).strip().strip('"')
        for line in lines[start + 1 :]
        if line.startswith("      - ")
    ]
    return {item for item in items if not item.startswith("-e")}


def test_environment_yml_lists_the_same_requirements_as_pyproject():
    assert conda_pip_requirements() == pyproject_requirements()


def test_environment_yml_pins_the_python_the_lab_is_tested_on():
    assert "  - python=3.11" in (REPOSITORY / "environment.yml").read_text().splitlines()


def test_the_makefile_installs_from_pyproject_into_a_fresh_venv():
    makefile = (REPOSITORY / "Makefile").read_text()
    assert "-m venv" in makefile and "pip install" in makefile and ".[dev,teach,book]" in makefile
