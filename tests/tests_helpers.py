"""Small helpers shared by the tests."""

import csv
import socket
from pathlib import Path

from datamodules import CatDogDataModule


def photo_module(root, **kwargs) -> CatDogDataModule:
    """A CatDogDataModule sized for tiny test photos: 32x32 crops, batches of 4, no worker processes."""
    settings = {"batch_size": 4, "num_workers": 0, "image_size": 32, **kwargs}
    return CatDogDataModule(data_dir=str(root), **settings)


def tiny_photo_args(root) -> list[str]:
    """CLI data options for the tiny generated photos: 32x32 crops, no worker processes."""
    return ["--data.data_dir", str(root), "--data.image_size", "32", "--data.num_workers", "0"]


def transfer_fit_args(root, epochs: int = 1) -> list[str]:
    """``fit`` of the shipped transfer config with a small random-init backbone on the tiny photos."""
    return [
        "fit",
        "-c",
        "catdog_transfer",
        "--model.backbone",
        "resnet18",
        "--model.weights",
        "none",
        "--trainer.max_epochs",
        str(epochs),
        *tiny_photo_args(root),
    ]


def prediction_rows(out: str) -> list[dict]:
    """The rows of the predictions CSV that ``predict`` named in its output ``out``."""
    with Path(out.split("predictions: ")[1].split()[0]).open(newline="") as handle:
        return list(csv.DictReader(handle))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
