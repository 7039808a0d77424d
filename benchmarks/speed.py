"""Side by side, in one run, on the same data, model, batch size and optimizer:

  (a) the lesson's loop: torchvision dataset with ToTensor/Normalize through a DataLoader, loss.item() per step
  (b) a hand-written loop over one pre-normalised tensor, batches by indexing (the floor for eager PyTorch)
  (c) this app's ``fit``, run as ``python -m lightning_app fit`` (MNIST) and ``fit -c fashion_classifier``
      with everything as shipped (logging, checkpointing, progress bar, the warm-up and cosine schedule);
      variants: ``app`` (the defaults: the fast path) and ``per_step`` (``--fast_path null``: Lightning's
      per-step path, the same optimizer steps); ``--before DIR`` adds ``before``, another checkout's defaults

(b) runs without the variable importing Lightning sets (``PYTORCH_NVML_BASED_CUDA_CHECK``), as a script that
uses PyTorch alone would; see lightning_app/engine/host_tuning.py. Each epoch is training plus a validation pass over
the held-out 10%. Reported per run: median seconds per epoch after the first (warm-up) epoch, training samples per
second, final test accuracy, and c/b; with ``--runs N``, min/median/max over the runs at the end.
The transfer task compares FeatureCache (cached backbone features) with recomputing them every epoch.

    python benchmarks/speed.py --data-root ../shared/datasets --epochs 4 --runs 3 --lesson-epochs 0
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datamodules import FashionMNISTDataModule, MNISTDataModule  # noqa: E402
from lightning_app.engine.host_tuning import VARIABLE  # noqa: E402
from modules.classification import adam  # noqa: E402
from modules.mlp import fully_connected  # noqa: E402

TASKS = {  # model name, datamodule, torchvision dataset, hidden sizes, dropout, the app's own arguments
    "mnist": ("MLP", MNISTDataModule, datasets.MNIST, [128, 64], 0.0, []),
    "fashion": (
        "Classifier",
        FashionMNISTDataModule,
        datasets.FashionMNIST,
        [256, 128, 64],
        0.2,
        ["-c", "fashion_classifier"],
    ),
}
LR = 0.003
VARIANTS = {"app": [], "per_step": ["--fast_path", "null"]}


def plain_pytorch_env() -> dict[str, str | None]:
    """Remove the variable ``import lightning`` sets, as in a process that never imported it; returns it."""
    return {VARIABLE: os.environ.pop(VARIABLE, None)}


def restore_env(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is not None:
            os.environ[key] = value


def lesson_loop(data_dir: Path, dm_class, ds_class, hidden, dropout, epochs: int, device, batch: int) -> dict:
    """(a): the notebook's way, per-sample PIL->tensor transforms, loss.item() every step."""
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    full = ds_class(str(data_dir), train=True, transform=tf)
    train_idx, val_idx = dm_class(data_dir=str(data_dir)).split_indices(len(full))
    train = DataLoader(Subset(full, train_idx.tolist()), batch_size=batch, shuffle=True)
    val = DataLoader(Subset(full, val_idx.tolist()), batch_size=batch)
    test = DataLoader(ds_class(str(data_dir), train=False, transform=tf), batch_size=batch)
    torch.manual_seed(0)
    model = fully_connected(784, hidden, 10, dropout).to(device)
    criterion, optimizer = nn.NLLLoss(), torch.optim.Adam(model.parameters(), lr=LR)
    times = []

    def evaluate(loader):
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for images, labels in loader:
                images, labels = images.to(device), labels.to(device)
                top_class = model(images).exp().topk(1, dim=1)[1]
                correct += (top_class == labels.view(*top_class.shape)).sum().item()
                total += len(labels)
        model.train()
        return correct / total

    for _ in range(epochs):
        start = time.perf_counter()
        running_loss = 0.0
        for images, labels in train:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        evaluate(val)
        times.append(time.perf_counter() - start)
    return {"epoch_s": times, "test_acc": evaluate(test), "train_samples": len(train_idx)}


def tensor_loop(data_dir: Path, dm_class, hidden, dropout, epochs: int, device, batch: int) -> dict:
    """(b): the data as one normalised float tensor on the device, random batches by indexing, no host sync."""
    dm = dm_class(data_dir=str(data_dir))
    dm.setup("fit")
    dm.setup("test")

    def prepared(ds):
        return dm.normalize(ds.images.to(device)), ds.labels.to(device)

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = map(prepared, (dm.train_set, dm.val_set, dm.test_set))
    torch.manual_seed(0)
    model = fully_connected(784, hidden, 10, dropout).to(device)
    criterion, optimizer = nn.NLLLoss(), adam(model.parameters(), LR)  # the app's Adam (fused where it can be)
    times = []

    def evaluate(x, y):
        model.eval()
        with torch.no_grad():
            correct = sum((model(x[i : i + 1000]).argmax(1) == y[i : i + 1000]).sum() for i in range(0, len(x), 1000))
        model.train()
        return float(correct) / len(x)

    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(x_train), device=device)
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(x_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
        evaluate(x_val, y_val)
        times.append(time.perf_counter() - start)
    return {"epoch_s": times, "test_acc": evaluate(x_test, y_test), "train_samples": len(x_train)}


def app_fit(args: list[str], workdir: Path, app_root: Path | None = None) -> dict:
    """(c): the CLI in a subprocess; epoch times from its TensorBoard events, accuracy from metrics.json.
    ``app_root``: another checkout of the app to run instead (an earlier commit, for before and after)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logs = workdir / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(app_root)} if app_root else None
    done = subprocess.run(
        [sys.executable, "-m", "lightning_app", "fit", *args], cwd=workdir, capture_output=True, text=True, env=env
    )
    if done.returncode:
        raise RuntimeError(f"fit {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    wall = time.perf_counter() - start
    run = next(logs.glob("*/version_0"))
    events = EventAccumulator(str(run)).Reload()
    times = [e.value for e in events.Scalars("time/epoch_s")]
    metrics = json.loads((run / "metrics.json").read_text())
    return {"epoch_s": times, "test_acc": metrics.get("test/acc"), "wall_s": wall}


def median_after_warmup(times: list[float]) -> float:
    return statistics.median(times[1:] if len(times) > 1 else times)


def spread(values: list[float]) -> str:
    """min / median / max."""
    return f"{min(values):.3f} / {statistics.median(values):.3f} / {max(values):.3f}"


def transfer_task(opts, workdir: Path, accelerator: str, results: dict, emit) -> None:
    photos = opts.data_root / "cats_dogs" / "train"
    if not photos.is_dir():
        print(f"skipping transfer: {photos} not found")
        return
    common = ["-c", "catdog_transfer", "--data.data_dir", str(photos), "--trainer.max_epochs", str(opts.epochs)]
    common += ["--trainer.accelerator", accelerator]
    cached = app_fit(common, workdir)
    recomputed = app_fit([*common, "--trainer.callbacks", "null"], workdir)
    results["tasks"]["transfer"] = {"cached": cached, "recomputed": recomputed}
    for name, r in (("cached features", cached), ("recomputed (augmented)", recomputed)):
        emit(
            f"| transfer, efficientnet_lite0 | {name} | {median_after_warmup(r['epoch_s']):.2f} | - | "
            f"{r['test_acc']:.4f} | whole fit {r['wall_s']:.0f} s |"
        )


def small_task(task: str, run: int, opts, workdir: Path, device, accelerator: str, results: dict, emit) -> None:
    model, dm_class, ds_class, hidden, dropout, app_args = TASKS[task]
    data_dir = workdir / "data"
    source = opts.data_root / ds_class.__name__
    if not source.is_dir():
        print(f"skipping {task}: {source} not found")
        return
    if not (data_dir / ds_class.__name__).exists():
        shutil.copytree(source, data_dir / ds_class.__name__)
    dm_class(data_dir=str(data_dir)).prepare_data()  # extract once, outside the timings
    batch = opts.batch_size
    lesson_epochs = opts.epochs if opts.lesson_epochs is None else opts.lesson_epochs
    out = results["tasks"].setdefault(task, {"batch_size": batch, "runs": []})
    this: dict = {}
    out["runs"].append(this)
    saved = plain_pytorch_env()
    try:
        a = (
            lesson_loop(data_dir, dm_class, ds_class, hidden, dropout, lesson_epochs, device, batch)
            if lesson_epochs
            else None
        )
        b = tensor_loop(data_dir, dm_class, hidden, dropout, opts.epochs, device, batch)
    finally:
        restore_env(saved)
    this.update(a_lesson=a, b_tensor=b)
    common = [*app_args, "--data.data_dir", str(data_dir), "--data.batch_size", str(batch)]
    common += ["--trainer.max_epochs", str(opts.epochs), "--trainer.accelerator", accelerator]
    ma = median_after_warmup(a["epoch_s"]) if a else float("nan")
    mb = median_after_warmup(b["epoch_s"])
    n = b["train_samples"]
    label = f"{task} {model}, batch {batch}, run {run}"
    for name, r, m in (("(a) lesson loop", a, ma), ("(b) tensor loop", b, mb))[0 if a else 1 :]:
        emit(f"| {label} | {name} | {m:.3f} | {n / m:,.0f} | {r['test_acc']:.4f} | |")
    for name in opts.variants:
        before = name == "before"
        r = this[f"c_{name}"] = app_fit([*common, *VARIANTS.get(name, [])], workdir, opts.before if before else None)
        mc = median_after_warmup(r["epoch_s"])
        r["c_over_b"] = mc / mb
        note = f"c/b = {mc / mb:.2f}" + (f", c/a = {mc / ma:.2f}" if a else "") + f", whole fit {r['wall_s']:.1f} s"
        emit(f"| {label} | (c) app fit, {name} | {mc:.3f} | {n / mc:,.0f} | {r['test_acc']:.4f} | {note} |")


def summary(results: dict, variants: list[str]) -> None:
    """min / median / max over the runs: s/epoch of (b) and each (c), c/b, test accuracy."""
    print("\n| task | pipeline | s/epoch (min / med / max) | c/b (min / med / max) | test acc (min / med / max) |")
    print("| --- | --- | --- | --- | --- |")
    for task, out in results["tasks"].items():
        runs = out.get("runs") if isinstance(out, dict) else None
        if not runs:
            continue
        b = [median_after_warmup(r["b_tensor"]["epoch_s"]) for r in runs]
        acc = [r["b_tensor"]["test_acc"] for r in runs]
        print(f"| {task} | (b) tensor loop | {spread(b)} | | {spread(acc)} |")
        for name in variants:
            c = [median_after_warmup(r[f"c_{name}"]["epoch_s"]) for r in runs]
            ratio = [r[f"c_{name}"]["c_over_b"] for r in runs]
            acc = [r[f"c_{name}"]["test_acc"] for r in runs]
            print(f"| {task} | (c) {name} | {spread(c)} | {spread(ratio)} | {spread(acc)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--runs", type=int, default=1, help="repeat every pipeline this many times")
    parser.add_argument("--lesson-epochs", type=int, help="epochs of (a), the slow one (default: --epochs; 0 skips it)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--tasks", nargs="+", default=["mnist", "fashion", "transfer"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=ROOT / "logs" / "benchmarks" / "speed.json")
    parser.add_argument(
        "--before",
        type=Path,
        help="a checkout of an earlier commit (git worktree add DIR COMMIT): its defaults run as the variant "
        "'before', side by side with this checkout's",
    )
    opts = parser.parse_args()
    if opts.before:
        opts.variants = [*opts.variants, "before"]
    device = torch.device(opts.device)
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    workdir = Path(tempfile.mkdtemp(prefix="dlwp-bench-"))
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "cpus": torch.get_num_threads(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
        "command": " ".join(sys.argv),
        "tasks": {},
    }
    print(f"{results['date']}, {results['machine']}, device {device}, torch threads {results['cpus']}")
    print(f"command: {results['command']}, {opts.epochs} epochs each (median after the first)\n")
    print("| task | pipeline | s/epoch | train samples/s | test acc | note |")
    print("| --- | --- | --- | --- | --- | --- |", flush=True)
    opts.out.parent.mkdir(parents=True, exist_ok=True)

    def emit(row: str) -> None:
        """Print a row and save the raw numbers as they come, so a run cut short keeps what it measured."""
        print(row, flush=True)
        opts.out.write_text(json.dumps(results, indent=2))

    for run in range(1, opts.runs + 1):
        for task in opts.tasks:
            if task == "transfer":
                if run == 1:
                    transfer_task(opts, workdir, accelerator, results, emit)
                continue
            small_task(task, run, opts, workdir, device, accelerator, results, emit)
    summary(results, opts.variants)
    opts.out.write_text(json.dumps(results, indent=2))
    print(f"\nraw numbers: {opts.out}")


if __name__ == "__main__":
    main()
