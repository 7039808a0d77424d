"""Tiny files in the real formats (idx archives, photo folders), and where the real data is."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from datamodules import CatDogDataModule

REAL_DATA = Path(__file__).resolve().parents[3] / "shared" / "datasets"


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
