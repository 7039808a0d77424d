"""Wall seconds from a command's start to its final test accuracy, for the issue's goals:
>= 98% on MNIST and >= 89% on Fashion-MNIST (settings chosen for speed; the app's defaults stay the lesson's).

    python benchmarks/time_to_accuracy.py --data-root ../shared/datasets              # the fast path (default)
    python benchmarks/time_to_accuracy.py --data-root ../shared/datasets --per-step   # --fast_path null
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOALS = {  # target, data folder, batch size, other options
    "mnist": (0.98, "MNIST", 128, ["--trainer.max_epochs", "30", "--model.dropout", "0.1", "--model.lr", "0.001"]),
    "fashion": (0.89, "FashionMNIST", 128, ["-c", "fashion_classifier", "--trainer.max_epochs", "25"]),
}


def path_args(batch: int, per_step: bool) -> list[str]:
    """The same optimizer steps of ``batch`` samples either way: the default fast path, or Lightning's
    per-step path (with the DataLoader, as before the fast path became the default)."""
    args = ["--data.batch_size", str(batch)]
    return [*args, "--fast_path", "null", "--data.on_device", "false"] if per_step else args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--goals", nargs="+", default=list(GOALS))
    parser.add_argument("--per-step", action="store_true", help="Lightning's per-step path instead of the fast path")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more fit options, last")
    opts = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="dlwp-tta-"))
    print(f"{datetime.now(UTC).isoformat(timespec='seconds')}, {platform.platform()}")
    print("| goal | command | test accuracy | wall time |\n| --- | --- | --- | --- |")
    for goal in opts.goals:
        target, folder, batch, args = GOALS[goal]
        source = opts.data_root / folder
        if not source.is_dir():
            print(f"skipping {goal}: {source} not found")
            continue
        shutil.copytree(source, workdir / "data" / folder, dirs_exist_ok=True)
        args = [*args, "--data.data_dir", "data", *path_args(batch, opts.per_step), *opts.extra]
        shutil.rmtree(workdir / "logs", ignore_errors=True)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "lightning_app", "fit", *args], cwd=workdir, capture_output=True)
        wall = time.perf_counter() - start
        if done.returncode:
            print(f"| {goal} | `fit {' '.join(args)}` | failed: {done.stderr.decode()[-400:]!r} | |")
            continue
        metrics = json.loads(next((workdir / "logs").glob("*/version_0/metrics.json")).read_text())
        acc = metrics["test/acc"]
        mark = "" if acc >= target else f" (goal {target:.0%} missed)"
        print(f"| {goal} >= {target:.0%} | `fit {' '.join(args)}` | {acc:.2%}{mark} | {wall:.1f} s |", flush=True)


if __name__ == "__main__":
    main()
