"""The transfer model's feature pass under DDP: CPU-seconds of one epoch of ``fit -c catdog_transfer`` in one
process and in two (gloo), for this tree and for an earlier commit, interleaved in one sitting.

Before the shared pass each DDP process ran the backbone over every photo; now each runs it over its share and
the shares are gathered. CPU-seconds are the machine's busy time over the command (user, nice, system, irq and
softirq from /proc/stat): DDP's second process is not a child the first one waits for, so the command's own
rusage would miss it. Run it on an otherwise idle machine.

    python benchmarks/sharded_feature_pass.py --photos ../shared/datasets/cats_dogs/train --photos_per_class 500 \\
        --before HEAD~1
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def subset(photos: Path, per_class: int, into: Path) -> Path:
    """``per_class`` photos of each class of ``photos``, linked into a folder of their own."""
    for folder in sorted(p for p in photos.iterdir() if p.is_dir()):
        (into / folder.name).mkdir(parents=True)
        for file in sorted(folder.iterdir())[:per_class]:
            (into / folder.name / file.name).symlink_to(file.resolve())
    return into


def busy_seconds() -> float:
    """CPU-seconds the whole machine has spent busy since it started."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in stat.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def run(tree: Path, photos: Path, devices: int) -> tuple[float, float]:
    """(CPU-seconds, wall seconds) of one epoch with a fresh feature cache."""
    args = ["fit", "-c", "catdog_transfer", "--data.data_dir", str(photos), "--trainer.max_epochs", "1"]
    args += ["--trainer.accelerator", "cpu", "--trainer.devices", str(devices)]
    if devices > 1:
        args += ["--trainer.strategy", "ddp"]
    before = busy_seconds()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as cwd:
        done = subprocess.run(
            [sys.executable, "-m", "lightning_app", *args],
            cwd=cwd,
            env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
        )
    wall = time.perf_counter() - start
    cpu = busy_seconds() - before
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--photos_per_class", type=int, default=500)
    parser.add_argument("--before", default="", help="a commit to compare with (checked out in a git worktree)")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        photos = subset(args.photos, args.photos_per_class, Path(scratch) / "photos")
        trees = {"after": ROOT}
        if args.before:
            trees["before"] = Path(scratch) / "before"
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(trees["before"]), args.before],
                check=True,
            )
        try:
            results: dict[tuple[str, int], list[tuple[float, float]]] = {}
            for _ in range(args.repeats):
                for devices in (1, 2):
                    for name, tree in trees.items():
                        results.setdefault((name, devices), []).append(run(tree, photos, devices))
                        cpu, wall = results[name, devices][-1]
                        print(f"{name:6} {devices} process(es): {cpu:6.1f} CPU-s, {wall:5.1f} s wall", flush=True)
        finally:
            if args.before:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(trees["before"])])
        count = sum(1 for _ in photos.rglob("*.*"))
    print(f"\n{count} photos, median of {args.repeats}:")
    for name in trees:
        one, two = (statistics.median(c for c, _ in results[name, d]) for d in (1, 2))
        print(f"{name:6}: one process {one:.1f} CPU-s, two {two:.1f} CPU-s: {two / one:.2f}x")


if __name__ == "__main__":
    main()
