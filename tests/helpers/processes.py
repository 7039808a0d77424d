"""The app in a child process as a user starts it, a free port, the predictions a run wrote."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # on PYTHONPATH: `tests.helpers...` class paths import


def python_cli(*args: str, cwd: Path, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "lightning_app", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def prediction_rows(out: str) -> list[dict]:
    """The rows of the predictions CSV that ``predict`` named in its output ``out``."""
    with Path(out.split("predictions: ")[1].split()[0]).open(newline="") as handle:
        return list(csv.DictReader(handle))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
