"""The examples the README and docs/ show, read from the pages themselves."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "docs" / "notebooks" / "README.md"]


def example(name: str) -> str:
    """The Python example in the README or a docs/ page that starts with the comment ``# <name>``."""
    for page in PAGES:
        for block in page.read_text().split("```python\n")[1:]:
            code = block.split("```")[0]
            if code.startswith(f"# {name}\n"):
                return code
    raise AssertionError(f"no example {name} in the README or docs/")
