"""Where the seconds of a command go when little or nothing is computed, side by side for one or more trees of
the code (this checkout, and e.g. a ``git worktree`` of an earlier commit), in one run, interleaved:

- ``--help`` (the top level), ``fit --help`` and ``fit -c fashion_classifier --print_config``, each cold
  (``DLWP_HELP_CACHE=0``) and warm (the second time, with the help cache of cli/help_cache.py);
- the default ``fit`` (5 epochs of the MNIST MLP, then the test) as a whole, and its phases: the interpreter's
  start and exit, the imports, the parser, the instantiation, ``trainer.fit`` (data, sanity check, training,
  validation, TensorBoard pictures) and the test after it.

    python benchmarks/startup.py --data-root ../shared/datasets --runs 3 [--tree /tmp/before ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PHASES = r"""
import json, os, sys, time
start = time.perf_counter()
marks = {}
import lightning_app.cli.main as entry
marks["imports"] = time.perf_counter()
from lightning_app.cli.lesson_cli import LessonCLI
from lightning_app.toolkit.app_trainer import AppTrainer

def wrap(owner, name, before=None, after=None):
    original = getattr(owner, name)
    def wrapped(*args, **kwargs):
        if before:
            marks[before] = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            if after:
                marks[after] = time.perf_counter()
    setattr(owner, name, wrapped)

wrap(LessonCLI, "parse_arguments", after="parser")
wrap(LessonCLI, "instantiate_classes", after="instantiation")
wrap(AppTrainer, "fit", after="fit")
wrap(LessonCLI, "after_fit", after="test")
order = ["imports", "parser", "instantiation", "fit", "test"]

def write_phases():  # at exit: the entry point may leave with os._exit after the atexit handlers
    previous, out = start, {}
    for name in order:
        out[name] = marks[name] - previous
        previous = marks[name]
    out["in_process"] = previous - start
    with open(os.environ["PHASES_OUT"], "w") as handle:
        json.dump(out, handle)

import atexit
atexit.register(write_phases)
import lightning_app.__main__ as app
sys.argv = ["python -m lightning_app", "fit"]
app.main()
"""


def timed(args: list[str], tree: Path, cwd: Path, env: dict | None = None) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree), "COLUMNS": "100", **(env or {})}
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def one_round(tree: Path, data_root: Path, work: Path) -> dict[str, float]:
    work.mkdir(parents=True)
    (work / "data").mkdir()
    (work / "data" / "MNIST").symlink_to(data_root / "MNIST")
    cache = {"DLWP_CACHE_DIR": str(work / "cache")}
    cold = {"DLWP_HELP_CACHE": "0"}
    py = [sys.executable, "-m", "lightning_app"]
    row = {"--help": timed([*py, "--help"], tree, work)}
    for label, args in (
        ("fit --help", ["fit", "--help"]),
        ("--print_config", ["fit", "-c", "fashion_classifier", "--print_config"]),
    ):
        row[f"{label} cold"] = timed([*py, *args], tree, work, cold)
        timed([*py, *args], tree, work, cache)  # fills the cache
        row[f"{label} warm"] = timed([*py, *args], tree, work, cache)
    phases_out = work / "phases.json"
    env = {"PYTHONPATH": str(tree), "PHASES_OUT": str(phases_out)}
    row["fit total"] = timed([sys.executable, "-c", PHASES], tree, work, env)
    phases = json.loads(phases_out.read_text())
    row["fit: interpreter start and exit"] = row["fit total"] - phases.pop("in_process")
    row |= {f"fit: {k}": v for k, v in phases.items()}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tree", type=Path, action="append", default=[], help="another checkout to compare")
    opts = parser.parse_args()
    trees = [ROOT, *opts.tree]
    results: dict[Path, list[dict]] = {tree: [] for tree in trees}
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(opts.runs):
            for i, tree in enumerate(trees):  # interleaved: the machine's speed drifts within minutes
                results[tree].append(one_round(tree, opts.data_root.resolve(), Path(tmp) / f"{run}-{i}"))
    for tree, rows in results.items():
        print(f"\n## {tree}\n\n| measure | min | median | max (s) |\n| --- | --- | --- | --- |")
        for key in rows[0]:
            values = [row[key] for row in rows]
            print(f"| {key} | {min(values):.2f} | {statistics.median(values):.2f} | {max(values):.2f} |")


if __name__ == "__main__":
    main()
