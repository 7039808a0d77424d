"""Broken idx archives and photos are named, with what to do."""

import struct
from pathlib import Path

import pytest

from datamodules import DataError, MNISTDataModule
from datamodules.image_io import read_rgb
from tests.helpers.data import write_idx_dataset, write_photo


@pytest.fixture
def idx_copy(tmp_path):
    return write_idx_dataset(tmp_path / "data", "MNIST")


def corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "magic":
        path.write_bytes(b"\x00\x00\x09\x03" + data[4:])
    elif how == "fewer labels":
        path.write_bytes(struct.pack(">II", 0x801, 500) + data[8:508])
    elif how == "label 200":
        path.write_bytes(data[:8] + bytes([200]) + data[9:])


@pytest.mark.parametrize(
    "file, how, message",
    [
        ("train-images-idx3-ubyte", "truncated", "truncated or not idx files"),
        ("train-images-idx3-ubyte", "magic", "truncated or not idx files"),
        ("train-labels-idx1-ubyte", "fewer labels", "600 images but 500 labels"),
        ("train-labels-idx1-ubyte", "label 200", "labels run from 0 to 200, not 0 to 9"),
    ],
)
def test_broken_idx_files_are_named(idx_copy, file, how, message):
    corrupt(idx_copy / "MNIST" / "raw" / file, how)
    with pytest.raises(DataError, match=message):
        MNISTDataModule(data_dir=str(idx_copy)).setup("fit")


def test_truncated_jpeg_is_named(tmp_path):
    photo = tmp_path / "cat.jpg"
    write_photo(photo, "jpg", (10, 200, 10), size=(200, 160))
    photo.write_bytes(photo.read_bytes()[:600])
    with pytest.raises(DataError, match="cat.jpg is not a readable image"):
        read_rgb(photo)
