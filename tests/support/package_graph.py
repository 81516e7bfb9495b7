"""The package graph of services/, read from the imports (ast, nothing is run).

`python -m tests.support.package_graph` prints the Mermaid picture of the wings;
`--write` puts it into docs/architecture.md between its two markers, where
tests/unit/test_package_boundaries.py checks that it is current.
"""
from __future__ import annotations

import argparse
import ast
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "services"
DOC = REPO / "docs" / "architecture.md"
BEGIN, END = "<!-- package-graph:begin -->", "<!-- package-graph:end -->"
WINGS = ("commands", "viewer", "recorder", "uploader", "bucket", "crypt", "common")


@dataclass(frozen=True)
class Import:
    source: str    # module importing, e.g. services.uploader.job
    target: str    # module imported, e.g. services.bucket.client
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(root: Path = SERVICES) -> list[Import]:
    """Every import of a services module, at any depth (function-level imports count too)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        source = module_name(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                if target.startswith("services") and _exists(target):
                    found.append(Import(source, target, node.lineno))
    return found


def _exists(module: str) -> bool:
    base = REPO.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def wing(module: str) -> str:
    """`services.uploader.job` -> `uploader`; the entry points at the top level -> `entry`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in WINGS) else "entry"


def wing_edges(found: list[Import]) -> dict[tuple[str, str], int]:
    """(from wing, to wing) -> number of distinct module pairs."""
    edges: dict[tuple[str, str], int] = {}
    for source, target in {(i.source, i.target) for i in found}:
        a, b = wing(source), wing(target)
        if a != b:
            edges[(a, b)] = edges.get((a, b), 0) + 1
    return edges


def modules_by_wing() -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for path in sorted(SERVICES.rglob("*.py")):
        name = module_name(path)
        if path.name != "__init__.py":
            grouped.setdefault(wing(name), []).append(name.rsplit(".", 1)[-1])
    return grouped


def mermaid() -> str:
    lines = ["```mermaid", "flowchart TD"]
    for name, modules in sorted(modules_by_wing().items(), key=lambda kv: (kv[0] != "entry", kv[0])):
        label = "entry points" if name == "entry" else f"services/{name}/"
        lines.append(f'    {name}["<b>{label}</b><br/>{", ".join(modules)}"]')
    for (a, b), count in sorted(wing_edges(imports()).items()):
        lines.append(f"    {a} -->|{count}| {b}")
    lines.append("```")
    return "\n".join(lines)


def current_block(text: str) -> str | None:
    if BEGIN not in text or END not in text:
        return None
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"update {DOC.relative_to(REPO)}")
    args = parser.parse_args()
    picture = mermaid()
    if not args.write:
        print(picture)
        return 0
    text = DOC.read_text()
    if current_block(text) is None:
        raise SystemExit(f"{DOC} has no {BEGIN} ... {END} block")
    before, rest = text.split(BEGIN, 1)
    DOC.write_text(before + BEGIN + "\n" + picture + "\n" + END + rest.split(END, 1)[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
