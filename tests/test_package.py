"""The package as a newcomer meets it: declared in pyproject, a `sam2enc` command, no import circle,
nothing in sam2enc/ that only tests or tools use."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sam2enc"


def intra_package_imports() -> dict[str, set[str]]:
    """module → the sam2enc modules it imports, at top level or inside functions."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        edges = graph.setdefault(module, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{parent}.{base}" if base else parent
                names = [f"{base}.{alias.name}" for alias in node.names] + [base]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            edges.update(n for n in names if n.startswith("sam2enc") and n != module)
    modules = set(graph)
    return {m: {t for t in targets if t in modules and t != "sam2enc"} for m, targets in graph.items()}


def test_no_import_circle():
    graph = intra_package_imports()
    assert graph["sam2enc.export"] and "sam2enc.download" in graph["sam2enc.export"]  # the walk sees imports
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            assert state.get(target) != 1, f"import circle: {' -> '.join([*path, module, target])}"
            if target not in state:
                visit(target, [*path, module])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_every_library_module_is_used_by_the_library_or_its_entry_points():
    """A module only tests or tools import belongs in tests/ or tools/."""
    graph = intra_package_imports()
    entry_points = {"sam2enc", "sam2enc.__main__", "sam2enc.web", "sam2enc.web.__main__", "sam2enc.client"}
    entry_points |= {"sam2enc.service"}  # predict.py's
    entry_points |= {"sam2enc.space"}  # python -m sam2enc.space, and space/app.py (the Hugging Face Space)
    reached, todo = set(), list(entry_points)
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo.extend(graph.get(module, ()))
    assert set(graph) - reached == set()


def test_pyproject_declares_the_package_and_its_command(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("sam2enc-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry_points = archive.read(info).decode()
    assert "sam2enc = sam2enc.__main__:main" in entry_points
    assert "sam2enc/web/static/app.js" in names and "sam2enc/encoder.py" in names
    assert not any(n.startswith(("tests/", "tools/")) for n in names)
    for extra in ("serve", "export", "space", "notebook", "dev"):
        assert f"Provides-Extra: {extra}" in metadata
    from sam2enc.__main__ import main

    help_run = subprocess.run(
        [sys.executable, "-c", "from sam2enc.__main__ import main; main(['--help'])"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert "usage: sam2enc" in help_run.stdout and main is not None
