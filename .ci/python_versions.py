"""Check that every direct dependency (and each extra's) resolves to wheels for the lowest and the highest Python
version pyproject.toml claims: ``requires-python``'s floor and the newest ``Programming Language :: Python :: 3.X``
classifier. A resolver dry run (``pip install --dry-run --python-version``), so neither interpreter is needed here.
"""

import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def claimed_versions(project: dict) -> tuple[str, str]:
    lowest = re.fullmatch(r">=\s*(3\.\d+)", project["requires-python"].strip())
    if lowest is None:
        sys.exit(f"requires-python {project['requires-python']!r} is not of the form '>=3.X'")
    listed = [c.rsplit(":: ", 1)[1] for c in project["classifiers"] if re.fullmatch(r".*Python :: 3\.\d+", c)]
    highest = max(listed, key=lambda v: int(v.split(".")[1]))
    if lowest[1] not in listed:
        sys.exit(f"requires-python's floor {lowest[1]} has no classifier")
    return lowest[1], highest


def requirements(project: dict) -> list[str]:
    extras = project.get("optional-dependencies", {})
    own = project["name"]
    return project["dependencies"] + [r for name, reqs in extras.items() if name != "dev" for r in reqs if own not in r]


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = requirements(project)
    failed = []
    for version in claimed_versions(project):
        with tempfile.TemporaryDirectory() as target:
            command = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed"]
            command += ["--only-binary=:all:", "--python-version", version, "--target", target, *reqs]
            run = subprocess.run(command, capture_output=True, text=True)
        errors = [line for line in run.stderr.splitlines() if line.startswith("ERROR")]
        print(f"Python {version}: {'resolves' if run.returncode == 0 else 'FAILS: ' + ' '.join(errors)[:600]}")
        if run.returncode != 0:
            failed.append(version)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
