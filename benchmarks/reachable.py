"""How much code a reader meets from one entry point: the labutils definitions it reaches.

    python benchmarks/reachable.py                       # from labutils.train.fit_one_cycle
    python benchmarks/reachable.py labutils.train.lr_range_test --list

Statically, from the source: a definition reaches every labutils function, class or constant it
names (``name``, ``module.name``, ``self.method``), and those reach theirs. A class counts whole,
methods and all. Lines are counted from ``def``/``class`` to the end, docstrings included.
Also prints the longest functions and modules of the package.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "labutils"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


class Index:
    """Every top-level definition of the package, and what each module's names refer to."""

    def __init__(self) -> None:
        self.definitions: dict[str, ast.AST] = {}  # "labutils.train.fit_one_cycle" -> node
        self.aliases: dict[str, dict[str, str]] = {}  # module -> {local name: qualified name}
        for path in sorted(PACKAGE.rglob("*.py")):
            self._read(module_name(path), ast.parse(path.read_text()))

    def _read(self, module: str, tree: ast.Module) -> None:
        aliases = self.aliases.setdefault(module, {})
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.definitions[f"{module}.{node.name}"] = node
                aliases[node.name] = f"{module}.{node.name}"
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        self.definitions[f"{module}.{target.id}"] = node
                        aliases[target.id] = f"{module}.{target.id}"
        for node in ast.walk(tree):  # imports anywhere, lazy ones too
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("labutils"):
                for name in node.names:
                    aliases[name.asname or name.name] = f"{node.module}.{name.name}"
            elif isinstance(node, ast.Import):
                for name in node.names:
                    if name.name.startswith("labutils"):
                        aliases[name.asname or name.name] = name.name

    def references(self, qualified: str) -> set[str]:
        """The definitions that one definition names."""
        module = qualified.rsplit(".", 1)[0]
        aliases = self.aliases[module]
        found = set()
        for node in ast.walk(self.definitions[qualified]):
            if isinstance(node, ast.Name) and node.id in aliases:
                found.add(aliases[node.id])
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                base = aliases.get(node.value.id)
                if base is not None:
                    found.add(f"{base}.{node.attr}")
        return {name for name in found if name in self.definitions}


def lines(node: ast.AST) -> int:
    start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    return node.end_lineno - start + 1


def reachable(index: Index, start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(index.references(name) - seen)
    return seen


def longest_functions(count: int) -> list[tuple[int, str]]:
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((lines(node), f"{module_name(path)}.{node.name}"))
    return sorted(found, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("start", nargs="?", default="labutils.train.fit_one_cycle")
    parser.add_argument("--list", action="store_true", help="list every reachable definition")
    args = parser.parse_args()
    index = Index()
    names = reachable(index, args.start)
    modules = sorted({name.rsplit(".", 1)[0] for name in names})
    total = sum(lines(index.definitions[name]) for name in names)
    print(f"{args.start}: {len(names)} definitions, {total} lines, in {len(modules)} modules")
    for module in modules:
        own = [name for name in names if name.rsplit(".", 1)[0] == module]
        own_lines = sum(lines(index.definitions[name]) for name in own)
        print(f"  {module:32} {len(own):3} definitions {own_lines:5} lines")
        if args.list:
            for name in sorted(own):
                print(f"      {lines(index.definitions[name]):4}  {name}")
    print("longest functions:")
    for count, name in longest_functions(5):
        print(f"  {count:4}  {name}")
    sizes = sorted(
        ((len(p.read_text().splitlines()), module_name(p)) for p in PACKAGE.rglob("*.py")),
        reverse=True,
    )
    print("longest modules:")
    for count, name in sizes[:5]:
        print(f"  {count:4}  {name}")


if __name__ == "__main__":
    main()
