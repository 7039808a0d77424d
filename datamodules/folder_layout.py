"""How an image folder is laid out: one folder per class, each file read once, and what identifies a file's bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from datamodules.errors import DataError
from datamodules.image_io import list_image_files


def content_digest(path: Path, chunk: int = 1 << 20) -> str:
    """A SHA-256 of the file's bytes, read in chunks (a photo is never trusted to be small)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def class_folders(root: Path) -> list[Path]:
    """The class folders under ``root``; a linked one that holds ``root`` itself or another class is refused."""
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    real = {p: p.resolve() for p in folders}
    for folder in folders:
        if real[folder] == root.resolve() or real[folder] in root.resolve().parents:
            raise DataError(f"class folder {folder} links to {real[folder]}, which holds the data set: remove the link")
        for other in folders:
            if other != folder and (real[other] == real[folder] or real[folder] in real[other].parents):
                raise DataError(
                    f"class folders {folder.name!r} and {other.name!r} share images (links to {real[folder]}): "
                    "give each class its own folder"
                )
    return folders


def list_images(root: Path, class_names: list[str]) -> tuple[list[Path], list[int]]:
    """Image files under ``root/<class>/`` for each class, with their class index."""
    files, labels = [], []
    for index, name in enumerate(class_names):
        folder = root / name
        if not folder.is_dir():
            raise DataError(f"{root} has no folder {name!r}: every split needs one folder per class")
        found = list_image_files(folder)
        files += found
        labels += [index] * len(found)
    return files, labels
