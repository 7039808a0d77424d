"""Side by side, in one run, on the same data, model, batch size and optimizer:

  (a) the lesson's loop: torchvision dataset with ToTensor/Normalize through a DataLoader, loss.item() per step
  (b) a hand-written loop over one pre-normalised tensor, batches by indexing (the floor for eager PyTorch)
  (c) this app's ``fit``, run as ``python -m lightning_app fit`` with its default logging, checkpointing and
      progress bar (constant learning rate here, as in (a) and (b)); variants: ``app`` (the defaults),
      ``on_device`` (``--data.on_device true``) and, on a GPU, ``fast`` (on_device, 16 steps' samples loaded
      at once, ``--model.step_batch`` steps of the same batch size, each replayed from a CUDA graph)

Each epoch is training plus a validation pass over the held-out 10%. Reported: median seconds per epoch
after the first (warm-up) epoch, training samples per second, final test accuracy, and c/a and c/b.
The transfer task compares FeatureCache (cached backbone features) with recomputing them every epoch.

    python benchmarks/speed.py --data-root ../shared/datasets --epochs 4
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datamodules import FashionMNISTDataModule, MNISTDataModule  # noqa: E402
from modules.classification import adam  # noqa: E402
from modules.mlp import fully_connected  # noqa: E402

TASKS = {
    "mnist": ("MLP", MNISTDataModule, datasets.MNIST, [128, 64], 0.0),
    "fashion": ("Classifier", FashionMNISTDataModule, datasets.FashionMNIST, [256, 128, 64], 0.2),
}
LR = 0.003
GROUP = 16  # the fast path loads this many steps' samples at once


def variant_args(name: str, batch: int) -> list[str]:
    """(c)'s options: ``app`` the defaults; ``on_device`` keeps the data on the device; ``fast`` also loads
    GROUP x batch samples at once, steps on ``batch`` of them, and replays each step from a CUDA graph."""
    args = {
        "app": [],
        "on_device": ["--data.on_device", "true"],
        "fast": ["--data.on_device", "true", "--data.batch_size", str(GROUP * batch)]
        + ["--model.step_batch", str(batch), "--model.cuda_graph", "true"],
    }
    return args[name]


VARIANTS = ("app", "on_device", "fast")


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


def app_fit(args: list[str], workdir: Path) -> dict:
    """(c): the CLI in a subprocess; epoch times from its TensorBoard events, accuracy from metrics.json."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logs = workdir / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "lightning_app", "fit", *args], cwd=workdir, capture_output=True, text=True
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lesson-epochs", type=int, help="epochs of (a), the slow one (default: --epochs; 0 skips it)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--variants", nargs="+", default=None, help=f"of (c), among {', '.join(VARIANTS)}")
    parser.add_argument("--tasks", nargs="+", default=["mnist", "fashion", "transfer"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=ROOT / "logs" / "benchmarks" / "speed.json")
    opts = parser.parse_args()
    device = torch.device(opts.device)
    variants = opts.variants or list(VARIANTS)
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    workdir = Path(tempfile.mkdtemp(prefix="dlwp-bench-"))
    results = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
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

    for task in opts.tasks:
        if task == "transfer":
            photos = opts.data_root / "cats_dogs" / "train"
            if not photos.is_dir():
                print(f"skipping transfer: {photos} not found")
                continue
            common = [
                "-c",
                "catdog_transfer",
                "--data.data_dir",
                str(photos),
                "--trainer.max_epochs",
                str(opts.epochs),
                "--trainer.accelerator",
                accelerator,
            ]
            cached = app_fit(common, workdir)
            recomputed = app_fit([*common, "--trainer.callbacks", "null"], workdir)
            results["tasks"]["transfer"] = {"cached": cached, "recomputed": recomputed}
            for name, r in (("cached features", cached), ("recomputed (augmented)", recomputed)):
                emit(
                    f"| transfer, efficientnet_lite0 | {name} | {median_after_warmup(r['epoch_s']):.2f} | - | "
                    f"{r['test_acc']:.4f} | whole fit {r['wall_s']:.0f} s |"
                )
            continue
        model, dm_class, ds_class, hidden, dropout = TASKS[task]
        data_dir = workdir / "data"
        source = opts.data_root / ds_class.__name__
        if not source.is_dir():
            print(f"skipping {task}: {source} not found")
            continue
        if not (data_dir / ds_class.__name__).exists():
            shutil.copytree(source, data_dir / ds_class.__name__)
        dm_class(data_dir=str(data_dir)).prepare_data()  # extract once, outside the timings
        batch = opts.batch_size
        lesson_epochs = opts.epochs if opts.lesson_epochs is None else opts.lesson_epochs
        a = None
        if lesson_epochs:
            a = lesson_loop(data_dir, dm_class, ds_class, hidden, dropout, lesson_epochs, device, batch)
        b = tensor_loop(data_dir, dm_class, hidden, dropout, opts.epochs, device, batch)
        common = [
            "--model",
            model,
            "--data",
            dm_class.__name__,
            "--data.data_dir",
            str(data_dir),
            "--data.batch_size",
            str(batch),
            "--trainer.max_epochs",
            str(opts.epochs),
            "--model.lr_schedule",
            "constant",
            "--trainer.accelerator",
            accelerator,
        ]
        results["tasks"][task] = {"batch_size": batch, "a_lesson": a, "b_tensor": b}
        ma = median_after_warmup(a["epoch_s"]) if a else float("nan")
        mb = median_after_warmup(b["epoch_s"])
        n = b["train_samples"]
        label = f"{task} {model}, batch {batch}"
        for name, r, m in (("(a) lesson loop", a, ma), ("(b) tensor loop", b, mb))[0 if a else 1 :]:
            emit(f"| {label} | {name} | {m:.3f} | {n / m:,.0f} | {r['test_acc']:.4f} | |")
        for name in variants:
            r = results["tasks"][task][f"c_{name}"] = app_fit([*common, *variant_args(name, batch)], workdir)
            mc = median_after_warmup(r["epoch_s"])
            note = f"c/a = {mc / ma:.2f}, c/b = {mc / mb:.2f}, b/c = {mb / mc:.2f}"
            emit(f"| {label} | (c) app fit, {name} | {mc:.3f} | {n / mc:,.0f} | {r['test_acc']:.4f} | {note} |")
    opts.out.write_text(json.dumps(results, indent=2))
    print(f"\nraw numbers: {opts.out}")


if __name__ == "__main__":
    main()
