"""Shared fixtures: tiny real-format data written into a temp dir, so tests need no network and no ../shared."""

from __future__ import annotations

import shutil
import struct
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from lightning.pytorch import Callback

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an uint8 array in the idx format (magic 0x0000080N, big-endian sizes, then the bytes)."""
    header = struct.pack(">I", 0x800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def learnable_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """28x28 images whose class is the row band that is bright, plus noise: easy to learn, not trivial."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n)
    images = rng.integers(0, 60, size=(n, 28, 28))
    for i, label in enumerate(labels):
        images[i, 2 + 2 * label : 4 + 2 * label, 4:24] = 255
    return images.astype(np.uint8), labels.astype(np.uint8)


def write_idx_dataset(root: Path, name: str, n_train: int = 600, n_test: int = 200) -> Path:
    """torchvision's layout: ``root/<name>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``."""
    raw = root / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = learnable_digits(n, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture(scope="session")
def idx_root(tmp_path_factory) -> Path:
    """A data folder holding tiny MNIST and FashionMNIST in torchvision's layout."""
    root = tmp_path_factory.mktemp("data")
    write_idx_dataset(root, "MNIST")
    write_idx_dataset(root, "FashionMNIST")
    return root


@pytest.fixture
def run_cli(tmp_path, monkeypatch):
    """Run ``python -m lightning_app ARGS`` in-process inside tmp_path, as a user types it (progress bar, model
    summary and logger on): ``sys.argv`` is patched, as Lightning's own CLI tests do."""
    from lightning_app.cli.main import main

    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> None:
        try:
            with monkeypatch.context() as patch, warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                patch.setattr(sys, "argv", ["python -m lightning_app", *args])
                main()
        finally:
            # LightningCLI warns when it is handed arguments while sys.argv holds others: never here
            assert not [w for w in caught if "args parameter" in str(w.message)]
            for w in caught:  # the rest go on to pytest's summary
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    return run


@pytest.fixture(scope="session")
def fitted_mnist_logs(idx_root, tmp_path_factory) -> Path:
    """``logs/`` after one ``fit --data.data_dir IDX --trainer.max_epochs 1`` (the MLP), made once per session."""
    from lightning_app.cli.main import main

    folder = tmp_path_factory.mktemp("fitted")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setattr(
            sys,
            "argv",
            ["python -m lightning_app", "fit", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "1"],
        )
        main()
    return folder / "logs"


@pytest.fixture
def mnist_run(fitted_mnist_logs, tmp_path, run_cli) -> Path:
    """A copy of that run in this test's folder (its checkpoints hold relative paths): ``logs/MLP-MNIST/version_0``."""
    shutil.copytree(fitted_mnist_logs, tmp_path / "logs")
    return Path("logs/MLP-MNIST/version_0")


class StopAfter(Callback):
    """Ends a fit after ``epochs`` epochs, as an interruption would, without changing the run's settings."""

    def __init__(self, epochs: int = 1) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


def write_photo(path: Path, kind: str, color: tuple[int, int, int], size: tuple[int, int] = (48, 40)) -> None:
    """A small image file: rgb JPEG, grey JPEG, RGBA PNG, palette PNG, or a broken file."""
    from PIL import Image

    rng = np.random.default_rng(abs(hash(path.name)) % 2**32)
    pixels = np.clip(np.array(color) + rng.integers(-30, 30, size=(size[1], size[0], 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    if kind == "jpg":
        image.save(path, "JPEG")
    elif kind == "grey":
        image.convert("L").save(path, "JPEG")
    elif kind == "rgba":
        image.convert("RGBA").save(path, "PNG")
    elif kind == "palette":
        image.convert("P").save(path, "PNG")
    elif kind == "broken":
        path.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    else:
        raise ValueError(kind)


def write_photo_folder(root: Path, classes: dict[str, tuple[int, int, int]], per_class: int = 12) -> Path:
    """``root/<class>/*.jpg|png`` with a mix of formats, each class its own colour."""
    kinds = ["jpg", "jpg", "grey", "rgba", "palette", "jpg"]
    for name, color in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            kind = kinds[i % len(kinds)]
            write_photo(root / name / f"{name}{i}.{'png' if kind in ('rgba', 'palette') else 'jpg'}", kind, color)
    return root


CATS_DOGS = {"cat": (200, 60, 60), "dog": (60, 60, 200)}


@pytest.fixture
def photo_root(tmp_path) -> Path:
    return write_photo_folder(tmp_path / "photos", CATS_DOGS)


class PoisonAfter(Callback):
    """From epoch ``epoch`` on, the weights turn NaN: the loss does too."""

    def __init__(self, epoch: int = 1) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch >= self.epoch:
            import torch

            with torch.no_grad():
                for p in pl_module.parameters():
                    p.fill_(float("nan"))


class KillAt(Callback):
    """SIGKILLs its own process in the middle of epoch ``epoch``, as a crash or an OOM killer would (only the
    process of global rank ``rank`` when given)."""

    def __init__(self, epoch: int = 1, batch: int = 2, rank: int | None = None) -> None:
        self.epoch, self.batch, self.rank = epoch, batch, rank

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.rank is not None and trainer.global_rank != self.rank:
            return
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)


class RecordBatches(Callback):
    """Writes the training samples each rank saw to ``$RECORD_DIR/rank<N>.json`` (identified by content), and
    a checksum of its final weights to ``weights<N>.json``."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        import hashlib

        import torch

        pixels = batch[0].flatten(1).mul(127.5).add(127.5).round().to(torch.uint8)  # back to the stored bytes
        self.seen += [hashlib.sha1(row.numpy().tobytes()).hexdigest() for row in pixels]

    def on_train_end(self, trainer, pl_module) -> None:
        import json
        import os

        folder = Path(os.environ["RECORD_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"rank{trainer.global_rank}.json").write_text(json.dumps(self.seen))
        weights = [float(p.detach().double().sum()) for p in pl_module.parameters()]
        (folder / f"weights{trainer.global_rank}.json").write_text(json.dumps(weights))


class RecordEnvironment(Callback):
    """Writes which cluster environment Lightning detected, and the ranks, to ``$RECORD_DIR/env<rank>.json``."""

    def on_fit_start(self, trainer, pl_module) -> None:
        import json
        import os

        env = trainer.strategy.cluster_environment
        folder = Path(os.environ["RECORD_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        record = {"environment": type(env).__name__, "world_size": trainer.world_size, "node_rank": trainer.node_rank}
        (folder / f"env{trainer.global_rank}.json").write_text(json.dumps(record))


class RecordLosses(Callback):
    """Keeps each training step's loss (a device tensor: no host sync)."""

    def __init__(self) -> None:
        self.losses: list = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(outputs["loss"].detach().clone())


def fit_tiny_mnist(
    data_dir: Path,
    accelerator: str,
    epochs: int,
    make_model,
    callbacks=(),
    trainer_kwargs=None,
    ckpt_path=None,
    **data_kwargs,
):
    """Fit ``make_model()`` (seeded) on the tiny MNIST (540 training samples, batches of 64 unless given), on
    Lightning's per-step path unless ``callbacks`` holds the app's FastPath.

    Returns the per-batch training losses (on the CPU) and the trainer."""
    import torch
    from lightning.pytorch import Trainer, seed_everything

    from datamodules import MNISTDataModule

    seed_everything(0)
    model = make_model()
    record = RecordLosses()
    trainer_kwargs = {"max_epochs": epochs, **(trainer_kwargs or {})}
    trainer = Trainer(
        accelerator=accelerator,
        devices=1,
        callbacks=[record, *callbacks],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **trainer_kwargs,
    )
    datamodule = MNISTDataModule(data_dir=str(data_dir), **{"batch_size": 64, **data_kwargs})
    trainer.fit(model, datamodule, ckpt_path=ckpt_path)
    return torch.stack(record.losses).cpu(), trainer


def train_losses(data_dir: Path, accelerator: str, epochs: int, make_model, **data_kwargs):
    """The per-batch training losses of :func:`fit_tiny_mnist`."""
    return fit_tiny_mnist(data_dir, accelerator, epochs, make_model, **data_kwargs)[0]
