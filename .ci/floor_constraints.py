"""Print constraints.txt with each direct dependency of pyproject.toml at the lowest version its range allows.

torch and torchvision keep the versions of constraints.txt (their wheels lie on the CI machines' disk; a floor
build is gigabytes of CUDA libraries to download), and so does everything the project does not name itself.
"""

import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

KEEP = {"torch", "torchvision"}
ROOT = Path(__file__).resolve().parents[1]


def floors() -> dict[str, str]:
    found = {}
    for line in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        lowest = [s.version for s in req.specifier if s.operator in (">=", "==", "~=")]
        if name not in KEEP and lowest:
            found[name] = lowest[0]
    return found


def main() -> None:
    lowest = floors()
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        match = re.match(r"([A-Za-z0-9_.\-]+)==", line)
        if match and canonicalize_name(match[1]) in lowest:
            line = f"{match[1]}=={lowest.pop(canonicalize_name(match[1]))}"
        print(line)
    for name, version in lowest.items():  # a floor of a package constraints.txt does not hold
        print(f"{name}=={version}")
    print(f"# {len(floors())} direct dependencies at their floors", file=sys.stderr)


if __name__ == "__main__":
    main()
