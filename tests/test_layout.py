"""The package's layout: leaves at the bottom, the command line on top, no import cycle.

Imports are read from the source, those inside functions too: a lazy import hides a cycle from
Python, not from a reader.
"""

import ast
from pathlib import Path

import labutils

PACKAGE = Path(labutils.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Each labutils module and the labutils modules it imports, anywhere in its source."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("labutils"):
                for alias in node.names:  # "from labutils.engine import checkpoints" is a module
                    candidate = f"{node.module}.{alias.name}"
                    found.add(candidate if candidate in modules else node.module)
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names if alias.name in modules}
        graph[name] = {module for module in found if module != name and module in modules}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    visiting, done = [], set()

    def visit(name):
        if name in visiting:
            return visiting[visiting.index(name) :] + [name]
        if name in done:
            return None
        visiting.append(name)
        for other in sorted(graph[name]):
            cycle = visit(other)
            if cycle:
                return cycle
        visiting.pop()
        done.add(name)
        return None

    for name in sorted(graph):
        cycle = visit(name)
        if cycle:
            return cycle
    return None


def test_no_module_imports_itself_back_through_others():
    cycle = find_cycle(imports())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_nothing_imports_the_command_line_but_the_command_line():
    for name, imported in imports().items():
        if name.startswith(
            ("labutils.course.cli", "labutils.course.commands", "labutils.__main__")
        ):
            continue
        assert not {
            m for m in imported if m.startswith(("labutils.course.cli", "labutils.course.commands"))
        }, name


def test_the_lessons_code_imports_no_subpackage_but_the_engine():
    """The top level is what notebooks 01-04 teach: it may lean on the loop's machinery, never
    on the course's tools or the speed track."""
    for name, imported in imports().items():
        if name.count(".") == 1 and name != "labutils.__main__":
            assert not {
                m for m in imported if m.startswith(("labutils.course", "labutils.speedrun"))
            }, name


def test_the_reading_map_names_every_module_and_subpackage():
    reading_map = labutils.__doc__
    for path in PACKAGE.iterdir():
        name = path.stem
        if name.startswith("_") or not (path.suffix == ".py" or (path / "__init__.py").exists()):
            continue
        assert f"    {name} " in reading_map, f"labutils/__init__.py does not mention {name}"
