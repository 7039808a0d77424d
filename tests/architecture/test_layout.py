"""The house's rules, read from every import (docs/architecture.md): a folder of lightning_app/ imports only what
stands below it, and datamodules/ and modules/ import nothing of the app or of each other."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# top to bottom: a module may import its own folder's and lower floors' modules
FLOORS = [
    {"lightning_app.__main__", "lightning_app"},
    {"lightning_app.cli"},
    {"lightning_app.toolkit"},
    {"lightning_app.callbacks"},
    {"lightning_app.engine"},
    {"lightning_app.predictor", "lightning_app.figures", "lightning_app.step_progress"},
    {"lightning_app.runs"},
    {
        "lightning_app.contracts",
        "lightning_app.errors",
        "lightning_app.earlier_names",
        "lightning_app.provenance",
        "lightning_app.notices",
    },
    {"modules", "datamodules"},
]


def room(module: str) -> str:
    """The folder (or top-level file) of a module: ``lightning_app.cli.main`` -> ``lightning_app.cli``."""
    parts = module.split(".")
    if parts[0] in ("modules", "datamodules"):
        return parts[0]
    if len(parts) == 1:
        return "lightning_app"
    return ".".join(parts[:2])


def floor(module: str) -> int:
    return next(i for i, rooms in enumerate(FLOORS) if room(module) in rooms)


def imports(path: Path) -> list[tuple[int, str]]:
    """Every import of this project's packages in ``path`` (function-level ones too), with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # `from lightning_app import figures` imports lightning_app.figures
            top = node.module == "lightning_app"
            names = [f"lightning_app.{a.name}" for a in node.names] if top else [node.module]
        found += [(node.lineno, n) for n in names if n.split(".")[0] in ("lightning_app", "modules", "datamodules")]
    return found


def module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = sorted(p for pkg in ("lightning_app", "modules", "datamodules") for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_one_way(path):
    me = module_of(path)
    wrong = []
    for line, target in imports(path):
        if target == "lightning_app.Predictor":
            target = "lightning_app.predictor"
        if room(target) == room(me):
            continue
        if me.split(".")[0] in ("modules", "datamodules"):
            wrong.append(f"line {line}: {target} (modules/ and datamodules/ import neither the app nor each other)")
        elif floor(target) <= floor(me):
            wrong.append(f"line {line}: {target} stands above or beside {room(me)}")
    assert not wrong, f"{path.relative_to(ROOT)}: " + "; ".join(wrong)


def test_every_module_has_a_floor():
    assert all(floor(module_of(p)) is not None for p in SOURCES)


def test_modules_say_nothing_of_how_steps_are_made_fast():
    for path in (ROOT / "modules").rglob("*.py"):
        text = path.read_text()
        assert "fast_path" not in text and "FastSteps" not in text and "DirectAdam" not in text, path
