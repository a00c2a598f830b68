"""Gradescope: its autograder's ``results.json``, and the bundle an instructor uploads.

Gradescope unpacks the bundle into ``/autograder/source``, runs ``setup.sh`` once to build the
image, then for each submission runs ``/autograder/run_autograder`` with the student's files in
``/autograder/submission`` and reads ``/autograder/results/results.json``: a ``score`` and one
entry per test (``name``, ``score``, ``max_score``, ``output``, ``visibility``). Here one test
is one check, named by its nbgrader ``grade_id``; written answers are left to Gradescope's
manually graded questions.
"""

from __future__ import annotations

import json
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path

from labutils.course.submissions import NotebookGrade

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, to build the autograder image.
set -euo pipefail
apt-get update
apt-get install -y --no-install-recommends python3 python3-pip python3-venv
python3 -m venv /autograder/venv
# The CPU build of torch: the image has no GPU, and the CUDA build is several GB.
/autograder/venv/bin/pip install --index-url https://download.pytorch.org/whl/cpu torch torchvision
/autograder/venv/bin/pip install "/autograder/source/lab[teach]"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for each submission. AUTOGRADER_ROOT and AUTOGRADER_PYTHON let it run
# elsewhere (the lab's tests run it on a fake root, offline).
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}}"
mkdir -p "$ROOT/results"
mapfile -t NOTEBOOKS < <(find "$ROOT/submission" -name '*.ipynb' \\
  -not -path '*/.ipynb_checkpoints/*' | sort)
if [ "${{#NOTEBOOKS[@]}}" -eq 0 ]; then
  echo '{{"score": 0, "tests": [], "output": "No notebook (.ipynb) in the submission."}}' \\
    > "$ROOT/results/results.json"
  exit 0
fi
"$PYTHON" -m labutils check "${{NOTEBOOKS[@]}}" --source "$ROOT/source/notebooks" \\
  --results-json "$ROOT/results/results.json" --timeout {timeout} --profile {profile}
exit 0  # the grade is in results.json; a failed check is not a failed autograder
"""


def results_json(grades: list[NotebookGrade]) -> dict:
    """Gradescope's results for one submission's notebooks: one test per check."""
    tests, notes = [], []
    for grade in grades:
        notes += [f"{grade.notebook}: {note}" for note in grade.notes]
        if grade.error:
            notes.append(f"{grade.notebook}: {grade.error}")
        for result in grade.results:
            if result.kind != "check":
                continue
            output = result.message or ("" if result.status == "passed" else result.status)
            if result.changed:
                output = f"(your copy of this check was changed: the original was used) {output}"
            tests.append(
                {
                    "name": result.grade_id,
                    "score": result.earned,
                    "max_score": result.points,
                    "status": "passed" if result.status == "passed" else "failed",
                    "output": output.strip(),
                    "visibility": "visible",
                }
            )
    return {
        "score": sum(test["score"] for test in tests),
        "output": "\n".join(notes),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def write_results_json(grades: list[NotebookGrade], path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results_json(grades), indent=1) + "\n", encoding="utf-8")
    return path


def _lab_files(repository: Path, into: Path) -> None:
    """The package and what pip needs to install it from source."""
    if not (repository / "pyproject.toml").is_file():
        raise FileNotFoundError(
            f"{repository} holds no pyproject.toml: build the bundle from a clone of the lab."
        )
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(repository / "labutils", into / "labutils", ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (repository / name).is_file():
            shutil.copy2(repository / name, into / name)


def _write_script(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def build_bundle(
    source: Path, repository: Path, out: Path, timeout: int = 120, profile: str = "smoke"
) -> Path:
    """Write Gradescope's autograder zip: setup.sh, run_autograder, the lab, the notebooks."""
    notebooks = sorted(Path(source).glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"No notebook (*.ipynb) in {source}: point --source at them.")
    with tempfile.TemporaryDirectory() as folder:
        staging = Path(folder)
        _write_script(staging / "setup.sh", SETUP_SH)
        _write_script(
            staging / "run_autograder", RUN_AUTOGRADER.format(timeout=timeout, profile=profile)
        )
        _lab_files(Path(repository), staging / "lab")
        (staging / "notebooks").mkdir()
        for path in notebooks:
            shutil.copy2(path, staging / "notebooks" / path.name)
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
            for path in sorted(staging.rglob("*")):
                if path.is_file():
                    info = zipfile.ZipInfo.from_file(path, path.relative_to(staging).as_posix())
                    bundle.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return out
