"""The lesson's notebooks (docs/notebooks/): their parameters, running them with papermill, what they showed."""

from __future__ import annotations

import ast
import re
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "docs" / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("part*.ipynb"))


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def parameters(notebook: nbformat.NotebookNode) -> dict[str, object]:
    """The values of the cell tagged ``parameters`` (papermill's convention), which may hold only assignments of
    constants: what a learner or a test changes is in one place."""
    cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    if not cells:
        return {}
    assert len(cells) == 1, "one parameters cell"
    values = {}
    for statement in ast.parse(cells[0].source).body:
        assert isinstance(statement, ast.Assign) and len(statement.targets) == 1, ast.unparse(statement)
        values[statement.targets[0].id] = ast.literal_eval(statement.value)
    return values


@dataclass
class Run:
    """What an executed notebook showed: its printed text, how many pictures, and how long it took."""

    text: str
    pictures: int
    seconds: float

    def number(self, label: str) -> float:
        """The number a line starting with ``label:`` printed (the last such line)."""
        found = re.findall(rf"(?m)^{re.escape(label)}: ([-0-9.]+)", self.text)
        assert found, f"the notebook printed no {label!r}"
        return float(found[-1])


def execute(path: Path, output: Path, **values: object) -> Run:
    """Run a notebook top to bottom in its own folder, as Jupyter would, with papermill setting the values of its
    parameters cell (only those it has)."""
    import papermill

    known = parameters(read(path))
    unknown = set(values) - set(known)
    assert not unknown, f"{path.name} has no parameters {unknown}"
    start = time.perf_counter()
    notebook = papermill.execute_notebook(
        str(path), str(output), parameters=values, cwd=str(path.parent), progress_bar=False, kernel_name="python3"
    )
    seconds = time.perf_counter() - start
    text, pictures = [], 0
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and out.name == "stdout":
                text.append(out.text)
            elif "data" in out:
                pictures += "image/png" in out.data
                text.append(out.data.get("text/plain", ""))
    return Run("\n".join(text), pictures, seconds)
