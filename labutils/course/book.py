"""The book of a run: a static site of an executed run folder, built offline with Sphinx.

    python -m labutils book --run runs/latest --out build/book [--with-solutions]

The site holds the lessons as they ran (each executed notebook, outputs and figures included;
a lesson the run did not execute is shown from ``notebooks/`` without outputs), the run's
summary and every figure it saved, and the pages under ``docs/``, with a contents sidebar and a
search page. Sphinx, MyST-NB (which shows the stored outputs: it executes nothing) and
sphinx-book-theme, whose files are all installed with it, build it; the few pages with
formulas get MathJax from the installed ``jupyter_server_mathjax``: nothing is fetched, at
build time or when a page is read.

The answers to the exercises (nbgrader's ``### BEGIN SOLUTION`` ... ``### END SOLUTION``
regions, and the hidden tests) are replaced by a note unless ``with_solutions`` is set. Every
picture gets alt text: a figure drawn by ``labutils.plots`` describes itself in the notebook's
text form of it; a saved figure carries its description in its PNG (``plots.save_figure``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

# The repository's folders (``runner.NOTEBOOK_FOLDER``'s: not imported, as the runner imports
# torch, which the book never needs) and the run's summary (``runner.SUMMARY_FILE``).
REPOSITORY = Path(__file__).resolve().parents[2]
NOTEBOOK_FOLDER = REPOSITORY / "notebooks"
DOCS_FOLDER = REPOSITORY / "docs"
SUMMARY_FILE = "summary.md"
SOLUTION = re.compile(
    r"^([ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION[ \t]*$", re.M | re.S
)
HIDDEN_TESTS = re.compile(
    r"^([ \t]*)### BEGIN HIDDEN TESTS\n.*?^[ \t]*### END HIDDEN TESTS[ \t]*$", re.M | re.S
)
MARKER_LINE = re.compile(r"^[ \t]*### (BEGIN|END) (SOLUTION|HIDDEN TESTS)[ \t]*\n?", re.M)
HIDDEN_CODE = "# The solution is hidden in this book: the instructor edition shows it."
HIDDEN_TEXT = "*The answer is hidden in this book: the instructor edition shows it.*"
HIDDEN_TESTS_NOTE = "# Hidden tests: not shown in this book."
DEFAULT_FIGURE_REPR = "<Figure size"  # matplotlib's text form of a figure: says nothing of it
MORE = "# (one more figure of the cell above)"  # an empty cell would not be shown at all
SAVED_LINE = re.compile(r"^saved (\S+\.png)\s*$", re.M)  # what the notebooks print on saving


class BookError(RuntimeError):
    """The book cannot be built: the message says why and what to do."""


@dataclass
class Page:
    """One page of the book: its document name (path without suffix) and its sidebar title."""

    name: str
    title: str
    notebook: str = ""  # for a lesson: the stored notebook it ran, e.g. 03_training.ipynb


# --------------------------------------------------------------------------- answers


def hide_answers(source: str, cell_type: str) -> str:
    """The cell's text with every solution region and hidden test replaced by a short note."""
    if cell_type == "markdown":
        source = SOLUTION.sub(lambda match: match.group(1) + HIDDEN_TEXT, source)
    else:
        source = SOLUTION.sub(lambda match: match.group(1) + HIDDEN_CODE, source)
    return HIDDEN_TESTS.sub(lambda match: match.group(1) + HIDDEN_TESTS_NOTE, source)


def show_answers(source: str, cell_type: str) -> str:
    """The cell's text with the answers; markdown loses the marker lines (they would be titles)."""
    return MARKER_LINE.sub("", source) if cell_type == "markdown" else source


# --------------------------------------------------------------------------- figures


def png_description(path: Path) -> str:
    """The ``Description`` text a PNG carries (``plots.save_figure`` writes it), or ""."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return str(image.text.get("Description", ""))
    except (OSError, ValueError):
        return ""


def _saved_descriptions(cell) -> list[str]:
    """The descriptions of the figures a cell saved, read from the PNGs it names."""
    printed = "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")
    found = [png_description(Path(path)) for path in SAVED_LINE.findall(printed)]
    return [description for description in found if description]


def alt_text(output, saved: list[str], fallback: str) -> str:
    """The alt text of an image output: the figure's own description, else a saved figure's."""
    text = output.get("data", {}).get("text/plain", "")
    text = " ".join(text.split()) if isinstance(text, str) else " ".join("".join(text).split())
    if text and not text.startswith(DEFAULT_FIGURE_REPR):
        return text
    return saved.pop(0) if saved else fallback


def _is_image(output) -> bool:
    return "image/png" in output.get("data", {})


def split_figures(cell, fallback: str) -> list:
    """The cell, cut so that each part shows at most one picture, each with its alt text.

    MyST-NB reads alt text per cell, so a cell that shows three confusion matrices becomes
    the cell with the first and two input-less cells with one more each.
    """
    saved = _saved_descriptions(cell)
    parts, outputs = [], []
    for output in cell.outputs:
        if _is_image(output) and any(_is_image(earlier) for earlier in outputs):
            parts.append(outputs)
            outputs = []
        outputs.append(output)
    parts.append(outputs)
    cells = []
    for number, outputs in enumerate(parts):
        part = nbformat.from_dict(cell) if number == 0 else nbformat.v4.new_code_cell(MORE)
        part.outputs = outputs
        if number:
            part.metadata["tags"] = ["remove-input"]
        image = next((output for output in outputs if _is_image(output)), None)
        if image is not None:
            alt = alt_text(image, saved, fallback)
            part.metadata.setdefault("mystnb", {})["image"] = {"alt": alt}
        cells.append(part)
    return cells


# --------------------------------------------------------------------------- lessons


def prepare_notebook(notebook, title_suffix: str, with_solutions: bool):
    """A copy of a notebook for the book: answers hidden (or shown), one picture per cell."""
    notebook = nbformat.from_dict(notebook)
    title = _first_heading(notebook)
    cells = []
    for cell in notebook.cells:
        change = show_answers if with_solutions else hide_answers
        cell.source = change(cell.source, cell.cell_type)
        if cell.cell_type == "code":
            cells += split_figures(cell, f"A figure of the lesson {title}{title_suffix}.")
        else:
            cells.append(cell)
    notebook.cells = cells
    if title_suffix:
        _retitle(notebook, title_suffix)
    return notebook


def _first_heading(notebook) -> str:
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return "a lesson"


def _retitle(notebook, suffix: str) -> None:
    """Add ``suffix`` to the notebook's title, so that the three runs of 03 read apart."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("# "):
            first, _, rest = cell.source.partition("\n")
            cell.source = f"{first}{suffix}\n{rest}"
            return


def _papermill(notebook) -> dict:
    return notebook.metadata.get("papermill", {})


def write_lessons(run: Path, source: Path, with_solutions: bool) -> list[Page]:
    """Each executed notebook of the run, in the order it ran, then each lesson it did not run."""
    executed = {
        path: nbformat.read(path, as_version=4) for path in (run / "notebooks").glob("*.ipynb")
    }
    order = sorted(
        executed, key=lambda path: (_papermill(executed[path]).get("start_time") or "", path.name)
    )
    pages = [_write_lesson(path, executed[path], True, source, with_solutions) for path in order]
    ran = {Path(_papermill(notebook).get("input_path", "")).name for notebook in executed.values()}
    if NOTEBOOK_FOLDER.is_dir():  # not in an installed wheel: no notebooks/ beside it
        for path in sorted(NOTEBOOK_FOLDER.glob("*.ipynb")):
            if path.name not in ran:
                notebook = nbformat.read(path, as_version=4)
                pages.append(_write_lesson(path, notebook, False, source, with_solutions))
    return pages


def _write_lesson(path: Path, notebook, was_run: bool, source: Path, solutions: bool) -> Page:
    """One lesson page; the runs of one notebook (03 per model) are told apart in their titles."""
    input_name = Path(_papermill(notebook).get("input_path", path.name)).stem
    variant = path.stem[len(input_name) + 1 :] if path.stem.startswith(input_name + "_") else ""
    suffix = f" ({variant})" if variant else "" if was_run else " (not executed in this run)"
    book_notebook = prepare_notebook(notebook, suffix, solutions)
    (source / "lessons").mkdir(parents=True, exist_ok=True)
    nbformat.write(book_notebook, source / "lessons" / path.name)
    return Page(f"lessons/{path.stem}", _first_heading(book_notebook), f"{input_name}.ipynb")


# --------------------------------------------------------------------------- the run, the docs


def _figure_paths(run: Path) -> list[Path]:
    """Every figure the run saved: its own ``figures/`` first, then each model's."""
    return sorted(
        (path.relative_to(run) for path in run.rglob("*.png") if "notebooks" not in path.parts),
        key=lambda path: (len(path.parts), str(path)),
    )


SERIES_FIGURES = "The data, the models, the comparison"  # the run's own figures/ folder


def _markdown_alt(text: str) -> str:
    return " ".join(text.replace("[", "(").replace("]", ")").split())


def write_run_pages(run: Path, source: Path) -> list[Page]:
    """The run's summary, and a page with every figure it saved (each with its alt text)."""
    folder = source / "run"
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["# Figures of the run", "", "Every figure the run saved, as it saved it.", ""]
    heading = None
    for relative in _figure_paths(run):
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run / relative, folder / relative)
        group = SERIES_FIGURES if relative.parts[0] == "figures" else relative.parts[0]
        if group != heading:
            lines += [f"## {group}", ""]
            heading = group
        alt = _markdown_alt(png_description(run / relative) or f"the figure {relative.name}")
        lines += [f"![{alt}]({relative.as_posix()})", "", f"`{relative.as_posix()}`", ""]
    (folder / "figures.md").write_text("\n".join(lines), encoding="utf-8")
    pages = [Page("run/figures", "Figures of the run")]
    summary = run / SUMMARY_FILE
    if summary.is_file():
        shutil.copyfile(summary, folder / "summary.md")
        pages.insert(0, Page("run/summary", "Summary of the run"))
    return pages


REPOSITORY_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(\.\./([^)\s]+)\)")  # [text](../path)


def _book_links(text: str, lessons: dict[str, str]) -> str:
    """Links from docs/ into the repository: a notebook's go to its lesson page; the others
    (README, code) name the file, which the book does not hold."""

    def replace(match: re.Match) -> str:
        words, target = match.groups()
        name = Path(target.split("#")[0]).name
        if target.startswith("notebooks/") and name in lessons:
            return f"[{words}](../{lessons[name]}.ipynb)"
        return f"{words} (`{target.split('#')[0]}` in the repository)"

    return REPOSITORY_LINK.sub(replace, text)


def write_docs(docs: Path, source: Path, lessons: dict[str, str] | None = None) -> list[Page]:
    """The Markdown pages under ``docs/`` (and the files they show), one page each;
    ``lessons`` maps a stored notebook's file name to its lesson page."""
    if not docs.is_dir():
        return []
    shutil.copytree(docs, source / "docs", dirs_exist_ok=True)
    pages = []
    for path in sorted(docs.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        (source / "docs" / path.name).write_text(_book_links(text, lessons or {}), "utf-8")
        headings = [line[2:].strip() for line in text.splitlines() if line.startswith("# ")]
        title = headings[0] if headings else path.stem.replace("-", " ").replace("_", " ")
        pages.append(Page(f"docs/{path.stem}", title))
    return pages


# --------------------------------------------------------------------------- the site


def _toctree(caption: str, pages: list[Page]) -> list[str]:
    if not pages:
        return []
    entries = [f"{page.title} <{page.name}>" for page in pages]
    return ["```{toctree}", f":caption: {caption}", ":maxdepth: 1", "", *entries, "```", ""]


def write_index(source: Path, run: Path, sections: dict[str, list[Page]], solutions: bool) -> None:
    """The first page: which run this is, what the book holds, and the contents."""
    summary = run / SUMMARY_FILE
    first = summary.read_text(encoding="utf-8").splitlines()[0] if summary.is_file() else ""
    answers = (
        "The answers to the exercises are shown."
        if solutions
        else "The answers to the exercises are hidden: the instructor's edition of this book "
        "(`python -m labutils book --with-solutions`) shows them."
    )
    lines = [
        "# CIFAR-10 Lab: the book of a run",
        "",
        f"The lessons as they ran in **{first.lstrip('# ').strip() or run.name}**, their outputs "
        f"and figures included; the run's summary and figures; the guides. {answers}",
        "",
    ]
    for caption, pages in sections.items():
        lines += _toctree(caption, pages)
    (source / "index.md").write_text("\n".join(lines), encoding="utf-8")


# What the book's formulas need not of MathJax 2: the SVG output (they use HTML-CSS), the
# translations, and the speech engine of the accessibility explorer, which only its menu turns
# on (off here) and which would fetch its rules from a CDN. The formulas still carry MathML for
# screen readers (MathJax's AssistiveMML).
MATHJAX_UNUSED = ("SVG", "localization", "mathmaps", "mathjax-sre.js", "wgxpath.install.js")


def copy_mathjax(static: Path) -> bool:
    """MathJax 2 from the installed ``jupyter_server_mathjax`` into the site; False if absent."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        return False
    origin = Path(jupyter_server_mathjax.__file__).parent / "static"
    ignore = shutil.ignore_patterns(*MATHJAX_UNUSED)
    shutil.copytree(origin, static / "mathjax", ignore=ignore, dirs_exist_ok=True)
    return True


# As Jupyter's classic notebook set it up: the STIX web font shipped with the package, and no
# font looked for on the reader's machine or elsewhere.
MATHJAX_PATH = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
MATHJAX_CONFIG = {
    "tex2jax": {  # MyST marks its pages tex2jax_ignore; its formulas are class "math"
        "inlineMath": [["\\(", "\\)"]],
        "displayMath": [["\\[", "\\]"]],
        "processClass": "math|tex2jax_process",
    },
    "HTML-CSS": {"availableFonts": [], "webFont": "STIX-Web", "imageFont": None},
    "showMathMenu": False,
}


def write_conf(source: Path, mathjax: bool) -> None:
    """Sphinx's conf.py for the book, generated: nothing to keep in step in the repository."""
    settings = {
        "project": "CIFAR-10 Lab",
        "author": "the CIFAR-10 Lab",  # the theme writes "By <author>" under every page
        "extensions": ["myst_nb"],
        "html_theme": "sphinx_book_theme",
        "html_title": "CIFAR-10 Lab: the book of a run",
        "nb_execution_mode": "off",  # the run executed the notebooks; the book only shows them
        "nb_ipywidgets_js": {},  # widget scripts would come from a CDN
        "myst_enable_extensions": ["dollarmath"],
        "myst_heading_anchors": 3,  # links to a section of a page: docs/page.md#a-title
        "html_copy_source": False,
        "html_show_sourcelink": False,
        "html_static_path": ["_static"],
        "exclude_patterns": ["_build", "**.ipynb_checkpoints"],
        "suppress_warnings": ["myst.header", "mystnb.unknown_mime_type"],
        "html_theme_options": {
            "use_download_button": False,
            "home_page_in_toc": True,
            "show_navbar_depth": 1,
        },
    }
    if mathjax:
        settings |= {"mathjax_path": MATHJAX_PATH, "mathjax2_config": MATHJAX_CONFIG}
    else:  # no local MathJax: formulas stay as TeX text rather than load one from a CDN
        settings["myst_enable_extensions"] = []
    lines = ["# Written by labutils.course.book for one build; not kept in the repository."]
    lines += [f"{name} = {value!r}" for name, value in settings.items()]
    (source / "conf.py").write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_sphinx(source: Path, out: Path) -> str:
    """Build the HTML with Sphinx in a process of its own; returns its warnings."""
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-E", str(source), str(out)]
    command += ["-d", str(source / "_doctrees")]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise BookError(f"Sphinx could not build the book:\n{result.stderr[-3000:]}")
    return result.stderr


def check_run(run: Path) -> None:
    """Refuse a folder with no executed notebooks, and say how to make a run."""
    if not (run / "notebooks").is_dir() or not any((run / "notebooks").glob("*.ipynb")):
        raise BookError(
            f"{run} holds no executed notebooks (notebooks/*.ipynb): it is not a run folder. "
            f"Make a run first (python -m labutils run --profile smoke --out {run}), or pass "
            f"--run with the folder of one."
        )


def clear_out(out: Path) -> None:
    """Empty ``out`` when it holds an earlier book (no page left over); refuse any other folder."""
    if not out.exists() or not any(out.iterdir()):
        return
    if not (out / ".buildinfo").is_file():
        raise BookError(
            f"{out} is not empty and holds no book built before: choose an empty or new folder "
            f"with --out (the book replaces the whole folder)."
        )
    shutil.rmtree(out)


def build_book(
    run: Path, out: Path, with_solutions: bool = False, docs: Path = DOCS_FOLDER
) -> tuple[Path, str]:
    """Build the book of ``run`` into ``out``; returns the first page and Sphinx's warnings."""
    run, out = Path(run), Path(out)
    check_run(run)
    clear_out(out)  # before the work: a folder that is not a book is refused at once
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="labutils-book-") as folder:
        source = Path(folder)
        lessons = write_lessons(run, source, with_solutions)
        lesson_of = {}
        for page in lessons:
            lesson_of.setdefault(page.notebook, page.name)  # 03: the first model's run
        sections = {
            "Lessons": lessons,
            "The run": write_run_pages(run, source),
            "Guides": write_docs(Path(docs), source, lesson_of),
        }
        write_index(source, run, sections, with_solutions)
        write_conf(source, copy_mathjax(source / "_static"))
        warnings = run_sphinx(source, out)
    print(f"Built the book of {run} in {time.perf_counter() - start:.0f} s: {out / 'index.html'}")
    return out / "index.html", warnings
