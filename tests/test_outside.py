"""Outside the repository: a student notebook alone in an empty folder installs the lab and runs.

The environment is what Colab or a course JupyterHub offers: Python with Jupyter, torch and
torchvision, and no lab. It is built in seconds and offline: a fresh venv that sees the packages
of the environment running the tests (torch included, never installed twice) but not the lab,
nor one of the lab's requirements. The notebook's first cell then installs the lab from a wheel
built from this checkout, and the missing requirement from a local folder of wheels.
"""

import contextlib
import importlib.metadata
import io
import json
import os
import shutil
import site
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from labutils import runs, sources
from labutils.course import install_cell, runner

REPOSITORY = Path(__file__).resolve().parents[1]
NOTEBOOK = "01_data_exploration.ipynb"  # the quickest of the series under the smoke profile
PLACEHOLDER = "https://example.invalid/labutils-0.1.0-py3-none-any.whl"
# A requirement of the lab that the fresh environment lacks, as Colab lacks papermill: the
# install cell adds it, offline, from a wheel rebuilt from this environment's copy.
MISSING = "ipywidgets"


def package_files(folder: Path) -> set[str]:
    """Every file of the package in ``folder``, as paths inside a wheel."""
    return {
        path.relative_to(folder).as_posix()
        for path in (folder / "labutils").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The lab's wheel, built offline from a copy of what the wheel may use: no clone around it."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPOSITORY / name, source / name)
    shutil.copytree(
        REPOSITORY / "labutils", source / "labutils", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    command += ["--no-index", "--quiet", "--wheel-dir", str(out), str(source)]
    subprocess.run(command, check=True, capture_output=True, env=clean_environment())
    (built,) = out.glob("labutils-*.whl")
    return built


def clean_environment(**extra: str) -> dict:
    """This process's environment without what would show a kernel the lab of this checkout."""
    dropped = ("PYTHONPATH", "LABUTILS_RUN_DIR", "LABUTILS_PACKAGE", "CIFAR10_ROOT", "PIP_USER")
    environment = {key: value for key, value in os.environ.items() if key not in dropped}
    return {**environment, **extra}


def hidden(name: str) -> bool:
    """Whether the fresh environment must not see this entry of a site-packages folder."""
    return "labutils" in name.lower() or name == MISSING or name.startswith(f"{MISSING}-")


def mirror(site_packages: Path, view: Path) -> None:
    """Links to every entry of ``site_packages`` but the hidden ones."""
    view.mkdir()
    for entry in site_packages.iterdir():
        if not hidden(entry.name):
            (view / entry.name).symlink_to(entry)


def rebuild_wheel(site_packages: Path, name: str, wheelhouse: Path) -> Path:
    """A wheel of an installed pure-Python distribution, from the files its RECORD lists."""
    (dist_info,) = site_packages.glob(f"{name}-*.dist-info")
    version = dist_info.name[len(name) + 1 : -len(".dist-info")]
    wheel = wheelhouse / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for line in (dist_info / "RECORD").read_text().splitlines():
            path = line.rsplit(",", 2)[0]
            if not path.startswith("..") and "__pycache__" not in path:
                archive.write(site_packages / path, path)
    return wheel


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory) -> Path:
    """A fresh venv with this environment's packages, torch included, but not the lab.

    They are seen through a folder of links outside the venv: pip counts them as installed and
    refuses to uninstall anything outside its own environment, so the shared one is safe.
    """
    root = tmp_path_factory.mktemp("fresh")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "env")], check=True)
    python = root / "env" / "bin" / "python"
    views, wheelhouse = [], root / "wheelhouse"
    wheelhouse.mkdir()
    for number, folder in enumerate(map(Path, site.getsitepackages())):
        if folder.is_dir():
            views.append(root / f"shared-{number}")
            mirror(folder, views[-1])
        if list(folder.glob(f"{MISSING}-*.dist-info")):
            rebuild_wheel(folder, MISSING, wheelhouse)
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    lines = [f"import site; site.addsitedir({str(view)!r})" for view in views]
    (Path(purelib) / "shared-packages.pth").write_text("\n".join(lines) + "\n")
    # The kernel papermill starts for a notebook's `python3`: this venv's Python, whatever
    # other `python3` kernels the machine has.
    kernel = root / "jupyter" / "kernels" / "python3"
    kernel.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "Python 3", "language": "python"}
    (kernel / "kernel.json").write_text(json.dumps(spec))
    return python


def run_in(python: Path, code: str, **environment: str) -> str:
    """What ``code`` prints in the fresh environment."""
    result = subprocess.run(
        [python, "-c", code],
        capture_output=True,
        text=True,
        env=clean_environment(**environment),
        cwd=python.parents[2],  # not this checkout: `python -c` imports from its folder
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def where_is(python: Path, module: str) -> str:
    code = f"import importlib.util; spec = importlib.util.find_spec({module!r}); "
    return run_in(python, code + "print(spec.origin if spec else None)").strip()


EXECUTE = """
import sys, papermill
try:
    papermill.execute_notebook(sys.argv[1], sys.argv[2], cwd=sys.argv[3], kernel_name="python3",
                               allow_errors=True, progress_bar=False)
except papermill.PapermillExecutionError:
    pass  # a student's notebook: its exercises are stubs, which raise until they are written
"""


@pytest.fixture(scope="module")
def outside_run(wheel, fresh_python, tmp_path_factory) -> dict:
    """A student notebook, alone in an empty folder, executed with papermill from its first cell."""
    from labutils.course import grading  # nbgrader: the teaching tools make the student edition

    before = {name: where_is(fresh_python, name) for name in ("labutils", MISSING, "torch")}
    student = grading.student_edition(nbformat.read(runner.NOTEBOOK_FOLDER / NOTEBOOK, 4))
    install_cell.set_package_source(student, PLACEHOLDER)  # as make student PACKAGE=URL does
    folder = tmp_path_factory.mktemp("alone")
    nbformat.write(student, folder / NOTEBOOK)
    cache = tmp_path_factory.mktemp("cache")
    environment = dict(
        LABUTILS_PACKAGE=str(wheel),  # overrides the source written into the notebook
        LABUTILS_PROFILE="smoke",
        LABUTILS_PROGRESS="0",
        XDG_CACHE_HOME=str(cache),
        JUPYTER_PATH=str(fresh_python.parents[2] / "jupyter"),
        PIP_NO_INDEX="1",  # offline: what is missing comes from the wheelhouse
        PIP_FIND_LINKS=str(fresh_python.parents[2] / "wheelhouse"),
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    start = time.perf_counter()
    executed = folder / "executed.ipynb"
    command = [fresh_python, "-c", EXECUTE, folder / NOTEBOOK, executed, folder]
    result = subprocess.run(
        command, capture_output=True, text=True, env=clean_environment(**environment)
    )
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-3000:]
    print(f"\n{NOTEBOOK} outside the repository, install cell included: {seconds:.1f} s")
    notebook = nbformat.read(executed, as_version=4)
    first = code_cells(notebook)[0]
    print(f"its first cell ({first.metadata.papermill.duration:.1f} s) printed:\n{printed(first)}")
    return dict(before=before, notebook=notebook, folder=folder, cache=cache)


def code_cells(notebook: nbformat.NotebookNode) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def printed(cell) -> str:
    return "".join(output.get("text", "") for output in cell.outputs)


def errors(cell) -> list[str]:
    return [output.ename for output in cell.outputs if output.output_type == "error"]


# ------------------------------------------------------------------------ the notebooks' cell


@pytest.mark.parametrize(
    "path", sorted(runner.NOTEBOOK_FOLDER.glob("*.ipynb")), ids=lambda p: p.stem
)
def test_every_notebook_starts_with_the_install_cell(path):
    notebook = nbformat.read(path, as_version=4)
    assert code_cells(notebook)[0].source == install_cell.install_cell_source()
    assert install_cell.package_source(notebook) == ""  # the solution edition names none


def test_in_the_repository_the_install_cell_prints_nothing_and_costs_nothing():
    code = TransformerManager().transform_cell(install_cell.install_cell_source(PLACEHOLDER))
    output = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(output):
        exec(code, {"get_ipython": None})  # %pip would call get_ipython(): it must not run
    seconds = time.perf_counter() - start
    assert output.getvalue() == ""
    assert seconds < 0.5, f"{seconds:.3f} s"  # a few milliseconds on a quiet machine


def test_without_a_package_source_the_cell_says_what_to_set(tmp_path):
    code = TransformerManager().transform_cell(install_cell.install_cell_source(""))
    bare = [sys._base_executable, "-I", "-S", "-c", code]  # no site-packages: no lab
    result = subprocess.run(bare, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1
    assert "ModuleNotFoundError: The lab (labutils) could not be installed from ''" in result.stderr
    assert "set LABUTILS_PACKAGE in this cell" in result.stderr


def test_the_package_source_is_one_line_an_instructor_sets():
    notebook = nbformat.v4.new_notebook(cells=[install_cell.make_install_cell()])
    install_cell.set_package_source(notebook, "git+https://example.org/lab.git@v1")
    assert install_cell.package_source(notebook) == "git+https://example.org/lab.git@v1"
    changed = notebook.cells[0].source.splitlines()
    original = install_cell.install_cell_source().splitlines()
    assert [a for a, b in zip(changed, original) if a != b] == [
        install_cell.package_line("git+https://example.org/lab.git@v1")
    ]


def test_only_the_requirements_missing_altogether_are_installed():
    requirements = [
        "torch>=99",  # installed, even if older: a hosted kernel's torch stays as it is
        "Nb_Format>=5.9",
        "papermill>=2.6; python_version >= '3.8'",
        'pytest>=8.0; extra == "dev"',
    ]
    installed = {"torch", "nb-format"}
    assert install_cell.missing_requirements(requirements, installed) == ["papermill>=2.6"]


def test_a_notebook_without_the_install_cell_is_named_when_a_source_is_set():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import labutils")])
    with pytest.raises(ValueError, match="lesson.ipynb has no install cell"):
        install_cell.set_package_source(notebook, PLACEHOLDER, "lesson.ipynb")


def test_the_student_command_writes_the_package_source_into_every_notebook(tmp_path, capsys):
    from labutils.course import cli

    source = tmp_path / "source"
    source.mkdir()
    for name in ("01_data_exploration.ipynb", "02_models.ipynb"):  # two: every one, not one
        shutil.copy(runner.NOTEBOOK_FOLDER / name, source / name)
    arguments = ["student", "--source", str(source), "--out", str(tmp_path / "student")]
    assert cli.main([*arguments, "--package", PLACEHOLDER]) == 0
    written = sorted((tmp_path / "student").glob("*.ipynb"))
    assert [path.name for path in written] == sorted(path.name for path in source.iterdir())
    for path in written:
        assert install_cell.package_source(nbformat.read(path, as_version=4)) == PLACEHOLDER
    assert "No --package" not in capsys.readouterr().out


def test_make_student_passes_its_package_variable_on():
    makefile = (REPOSITORY / "Makefile").read_text()
    assert "PACKAGE ?=" in makefile
    assert 'labutils student --out student $(if $(PACKAGE),--package "$(PACKAGE)")' in makefile


# ------------------------------------------------------------------------ where files go


def test_the_data_root_is_the_clones_data_folder_in_a_clone(monkeypatch):
    monkeypatch.delenv("CIFAR10_ROOT", raising=False)
    assert sources.repository() == REPOSITORY
    assert sources.default_root() == REPOSITORY / "data"
    assert runs.default_run_folder() == REPOSITORY / "runs" / "latest"


def test_the_cache_folder_follows_the_xdg_convention(monkeypatch, tmp_path):
    if os.name == "nt" or sys.platform == "darwin":
        pytest.skip("the XDG convention is the Linux one")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert sources.cache_folder() == tmp_path / "labutils"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert sources.cache_folder() == Path.home() / ".cache" / "labutils"


# ------------------------------------------------------------------------ the wheel


@pytest.mark.slow
def test_the_wheel_carries_every_file_of_the_package_and_no_notebook(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert package_files(REPOSITORY) <= names  # every module, and every table the code reads
    assert "labutils/course/commands/run.py" in names
    assert not [name for name in names if name.endswith(".ipynb") or name.startswith("tests/")]


# ------------------------------------------------------------------------ outside, for real


@pytest.mark.slow
def test_the_fresh_environment_has_torch_but_not_the_lab(outside_run):
    assert outside_run["before"]["labutils"] == outside_run["before"][MISSING] == "None"
    assert "shared-" in outside_run["before"]["torch"]


@pytest.mark.slow
def test_the_first_cell_installs_the_lab_from_the_wheel_and_keeps_torch(outside_run, wheel):
    first = code_cells(outside_run["notebook"])[0]
    assert errors(first) == []
    kept = ", ".join(f"{name}=={importlib.metadata.version(name)}" for name in install_cell.KEPT)
    assert printed(first).startswith(f"Installing the lab from {str(wheel)!r} ...")
    assert f"Installing what the lab needs and is missing: {MISSING}>=" in printed(first)
    assert printed(first).endswith(
        f"The lab is installed (no need to restart the kernel); kept as they were: {kept}.\n"
    )


AFTER = """
import contextlib, io, importlib.metadata, json, labutils, torch
from labutils.course import cli

errors = io.StringIO()
with contextlib.redirect_stderr(errors):
    status = cli.main(["run", "--profile", "smoke"])  # the series, from the installed package
print(json.dumps(dict(
    labutils=labutils.__file__,
    torch=torch.__file__,
    direct_url=importlib.metadata.distribution("labutils").read_text("direct_url.json"),
    run=[status, errors.getvalue()],
)))
"""


@pytest.fixture(scope="module")
def installed(outside_run, fresh_python) -> dict:
    """What the fresh environment holds once the notebook ran: one Python start for every test."""
    return json.loads(run_in(fresh_python, AFTER))


@pytest.mark.slow
def test_the_lab_came_from_the_wheel_and_torch_was_not_reinstalled(
    installed, outside_run, fresh_python, wheel
):
    assert installed["labutils"].startswith(str(fresh_python.parents[1]))  # in the fresh venv
    assert json.loads(installed["direct_url"])["url"] == wheel.as_uri()
    assert installed["torch"] == outside_run["before"]["torch"]  # the shared copy, untouched
    purelib = Path(installed["labutils"]).parents[1]
    added = {path.name.split("-")[0] for path in purelib.iterdir()}
    assert added == {"labutils", MISSING, "shared"}  # and the .pth that shows the shared ones


@pytest.mark.slow
def test_the_installed_package_refuses_the_series_for_want_of_notebooks(installed):
    status, message = installed["run"]
    assert status == 1 and "runs from a clone of the lab's repository" in message


@pytest.mark.slow
def test_the_student_notebook_runs_to_its_end_where_only_the_exercises_fail(outside_run):
    cells = code_cells(outside_run["notebook"])
    assert all(cell.execution_count is not None for cell in cells)
    failed = [cell for cell in cells if errors(cell)]
    assert failed, "the student edition's stubs should raise"
    assert all("nbgrader" in cell.metadata for cell in failed)  # an exercise or its check


@pytest.mark.slow
def test_outside_a_clone_data_goes_to_the_cache_and_runs_beside_the_notebook(outside_run):
    assert list((outside_run["cache"] / "labutils" / "data").glob("synthetic-*"))
    figures = outside_run["folder"] / "runs" / "latest" / "figures"
    assert list(figures.glob("*.png"))
