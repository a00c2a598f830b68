"""The book of a run: built by the command line from the session's real smoke run, then read
back as a browser would (every link and picture), and checked for hidden answers."""

import html
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from labutils.course import book

# The book is built from executed notebooks: the session's smoke run comes first.
pytestmark = pytest.mark.slow


class Page(HTMLParser):
    """What one HTML page links to and holds: hrefs, srcs, ids, images and stylesheets."""

    def __init__(self) -> None:
        super().__init__()
        self.links, self.ids, self.images, self.scripts, self.styles = [], set(), [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for name in ("href", "src"):
            if attrs.get(name):
                self.links.append(attrs[name])
        if tag == "img":
            self.images.append(attrs)
        elif tag == "script" and attrs.get("src"):
            self.scripts.append(attrs["src"])
        elif tag == "link" and attrs.get("href"):
            self.styles.append(attrs["href"])


def read_page(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def built_book(smoke_run, tmp_path_factory):
    """The book of the smoke run, answers hidden, built through the command line."""
    result, run = smoke_run
    assert result.returncode == 0, result.stdout + result.stderr
    out = tmp_path_factory.mktemp("book") / "site"
    command = [sys.executable, "-m", "labutils", "book", "--run", run, "--out", out]
    built = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    pages = {path: read_page(path) for path in out.rglob("*.html") if "_static" not in path.parts}
    return run, out, pages


def executed_notebooks(run: Path) -> list[Path]:
    return sorted((run / "notebooks").glob("*.ipynb"))


def image_outputs(notebook) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


def is_external(link: str) -> bool:
    return bool(urlsplit(link).scheme) or link.startswith("//")


def test_the_book_has_a_page_per_lesson_the_run_and_a_search(built_book):
    run, out, _ = built_book
    for path in executed_notebooks(run):
        assert (out / "lessons" / f"{path.stem}.html").is_file(), path.name
    for page in ("index.html", "search.html", "run/summary.html", "run/figures.html"):
        assert (out / page).is_file(), page
    assert (out / "searchindex.js").is_file()


def test_every_page_and_picture_it_links_to_exists_and_every_anchor_too(built_book):
    _, out, pages = built_book
    for path, page in pages.items():
        for link in page.links:
            if is_external(link) or link.startswith(("mailto:", "javascript:")):
                continue
            parts = urlsplit(link)
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            assert target.exists(), f"{path.relative_to(out)} links to a missing {link}"
            if parts.fragment and target.suffix == ".html" and target in pages:
                assert parts.fragment in pages[target].ids, f"{path.name}: no #{parts.fragment}"


def test_each_lesson_page_shows_every_figure_of_its_notebook(built_book):
    run, out, pages = built_book
    for path in executed_notebooks(run):
        expected = image_outputs(nbformat.read(path, as_version=4))
        page = pages[out / "lessons" / f"{path.stem}.html"]
        shown = [image for image in page.images if "_images/" in image["src"]]
        assert len(shown) == expected > 0, path.name


def test_every_picture_of_the_book_has_alt_text_that_describes_it(built_book):
    _, out, pages = built_book
    images = [(path, image) for path, page in pages.items() for image in page.images]
    pictures = [(path, image) for path, image in images if "_static" not in image["src"]]
    assert len(pictures) > 20
    for path, image in pictures:
        alt = image.get("alt") or ""
        assert alt.strip(), f"{path.relative_to(out)}: {image['src']} has no alt text"
        if path.parent.name in ("lessons", "run"):  # the figures the lab draws: described
            assert len(alt) > 20, f"{path.relative_to(out)}: {image['src']} has alt {alt!r}"
            assert not alt.startswith("A figure of the lesson"), f"{path.name}: undescribed"


def test_the_run_pages_show_the_summary_and_every_saved_figure(built_book):
    run, out, pages = built_book
    saved = [path for path in run.rglob("*.png") if "notebooks" not in path.parts]
    figures = pages[out / "run" / "figures.html"].images
    assert len(figures) == len(saved) > 0
    summary = (out / "run" / "summary.html").read_text(encoding="utf-8")
    assert "SYNTHETIC" in summary and "comparison_curves" in summary


def solution_lines(run: Path) -> set[str]:
    """Lines that appear only inside the answers of the executed notebooks (long enough to be
    telling), and never elsewhere in them."""
    inside, outside = set(), []
    for path in executed_notebooks(run):
        for cell in nbformat.read(path, as_version=4).cells:
            for match in book.SOLUTION.finditer(cell.source):
                inside |= {line.strip() for line in match.group(0).splitlines()}
            outside.append(book.SOLUTION.sub("", cell.source))
    elsewhere = "\n".join(outside)
    return {
        line for line in inside if len(line) >= 25 and "###" not in line and line not in elsewhere
    }


def page_text(path: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))


def test_no_answer_reaches_the_book_without_solutions(built_book):
    run, out, pages = built_book
    answers = solution_lines(run)
    assert len(answers) > 10
    text = "\n".join(page_text(path) for path in pages)
    leaked = [line for line in answers if line in text]
    assert not leaked, f"answers in the book: {leaked[:3]}"
    assert book.HIDDEN_CODE in text and book.HIDDEN_TEXT.strip("*") in text


def test_no_script_or_style_is_fetched_from_outside(built_book):
    _, out, pages = built_book
    for path, page in pages.items():
        outside = [link for link in page.scripts + page.styles if is_external(link)]
        assert not outside, f"{path.relative_to(out)} loads {outside}"


def test_with_solutions_the_answers_stay_and_markdown_loses_the_markers(smoke_run):
    _, run = smoke_run
    notebook = nbformat.read(run / "notebooks" / "01_data_exploration.ipynb", as_version=4)
    shown = book.prepare_notebook(notebook, "", with_solutions=True)
    hidden = book.prepare_notebook(notebook, "", with_solutions=False)
    answers = [cell for cell in notebook.cells if "### BEGIN SOLUTION" in cell.source]
    shown_text = "\n".join(cell.source for cell in shown.cells)
    for cell in answers:
        body = book.SOLUTION.search(cell.source).group(0).splitlines()[1].strip()
        assert body in shown_text and body not in "\n".join(c.source for c in hidden.cells)
    markdown = [cell.source for cell in shown.cells if cell.cell_type == "markdown"]
    assert not any("### BEGIN SOLUTION" in source for source in markdown)


def test_a_cell_with_several_figures_gives_each_its_own_alt_text():
    figure = {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure size 10x10 with 1 Axes>"}
    cell = nbformat.v4.new_code_cell("show()")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={**figure, "text/plain": "First. Lines."}),
        nbformat.v4.new_output("display_data", data=figure),
    ]
    parts = book.split_figures(cell, "fallback")
    assert [part.metadata["mystnb"]["image"]["alt"] for part in parts] == [
        "First. Lines.",
        "fallback",
    ]
    assert parts[0].source == "show()" and parts[1].metadata["tags"] == ["remove-input"]


def test_a_folder_that_is_not_a_run_is_refused_with_the_way_to_make_one(tmp_path):
    with pytest.raises(book.BookError, match="labutils run"):
        book.build_book(tmp_path, tmp_path / "site")


def test_a_folder_that_holds_no_book_is_never_emptied(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(book.BookError, match="holds no book"):
        book.clear_out(tmp_path)
    assert (tmp_path / "notes.txt").is_file()


def test_the_docs_pages_become_pages_with_their_titles(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "measurements.md").write_text("# Measured on a laptop\n\n![a plot](plot.png)\n")
    (docs / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    pages = book.write_docs(docs, tmp_path / "source")
    assert pages == [book.Page("docs/measurements", "Measured on a laptop")]
    assert (tmp_path / "source" / "docs" / "plot.png").is_file()


def test_links_from_the_docs_into_the_repository_lead_to_lessons_or_name_the_file(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    text = "See [notebook 03](../notebooks/03_training.ipynb) and the [README](../README.md)."
    (docs / "guide.md").write_text(f"# Guide\n\n{text}\n")
    lessons = {"03_training.ipynb": "lessons/03_training_mlp"}
    book.write_docs(docs, tmp_path / "source", lessons)
    written = (tmp_path / "source" / "docs" / "guide.md").read_text()
    assert "[notebook 03](../lessons/03_training_mlp.ipynb)" in written
    assert "README (`README.md` in the repository)" in written
