"""Random and mutated bytes into the idx reader, the image reader and the checkpoint loader: the app's own error or
a valid result, never a traceback of another kind, never a long stall."""

import io
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from datamodules import DataError, MNISTDataModule
from datamodules.image_io import read_rgb
from lightning_app.errors import CheckpointError
from lightning_app.runs.checkpoints import load_checkpoint
from tests.helpers.data import write_idx_dataset

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def mutations():
    """(kind, position as a fraction of the file, byte or length): flip a byte, truncate, or insert junk."""
    return st.lists(
        st.tuples(st.sampled_from(["set", "truncate", "insert"]), st.floats(0, 1), st.integers(0, 255)),
        min_size=1,
        max_size=4,
    )


def mutate(data: bytes, changes) -> bytes:
    for kind, where, value in changes:
        at = int(where * max(len(data) - 1, 0))
        if kind == "set" and data:
            data = data[:at] + bytes([value]) + data[at + 1 :]
        elif kind == "truncate":
            data = data[:at]
        else:
            data = data[:at] + bytes([value]) * (value % 17 + 1) + data[at:]
    return data


@pytest.fixture(scope="module")
def clean_idx(tmp_path_factory) -> Path:
    return write_idx_dataset(tmp_path_factory.mktemp("idx"), "MNIST", 60, 20)


@FUZZ
@given(file=st.sampled_from(["train-images-idx3-ubyte", "train-labels-idx1-ubyte"]), changes=mutations())
def test_the_idx_reader_gives_data_or_a_data_error(clean_idx, tmp_path, file, changes):
    root = tmp_path / "data"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(clean_idx, root)
    target = root / "MNIST" / "raw" / file
    target.write_bytes(mutate(target.read_bytes(), changes))
    start = time.perf_counter()
    try:
        dm = MNISTDataModule(data_dir=str(root), download=False, batch_size=8)
        dm.setup("fit")
        x, y = next(iter(dm.train_dataloader()))
        assert x.dtype == torch.float32 and x.isfinite().all() and int(y.max()) < 10
    except DataError:
        pass
    assert time.perf_counter() - start < 10


def image_bytes(fmt: str) -> bytes:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 255, (12, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, fmt)
    return buffer.getvalue()


@FUZZ
@given(fmt=st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"]), changes=mutations())
def test_the_image_reader_gives_an_image_or_a_data_error(tmp_path, fmt, changes):
    path = tmp_path / f"photo.{fmt.lower()}"
    path.write_bytes(mutate(image_bytes(fmt), changes))
    start = time.perf_counter()
    try:
        image = read_rgb(path)
        assert image.dtype == torch.uint8 and image.ndim == 3 and image.shape[0] == 3
    except DataError as err:
        assert "photo." in str(err)
    assert time.perf_counter() - start < 10


@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes_are_never_an_image_or_a_checkpoint_by_accident(tmp_path, data):
    (tmp_path / "x.png").write_bytes(data)
    (tmp_path / "x.ckpt").write_bytes(data)
    with pytest.raises(DataError):
        read_rgb(tmp_path / "x.png")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "x.ckpt")


@pytest.fixture(scope="module")
def clean_ckpt(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("ckpt") / "small.ckpt"
    torch.save({"state_dict": {"w": torch.ones(3, 4)}, "epoch": 2, "hyper_parameters": {"lr": 0.003}}, path)
    return path.read_bytes()


def test_a_zip_of_a_newer_version_is_a_checkpoint_error(clean_ckpt, tmp_path):
    """Found by the fuzzer below in CI: a central directory asking for zip version 6.4 made Python's reader raise
    NotImplementedError, past the loader's one line."""
    data = bytearray(clean_ckpt)
    entry = data.index(b"PK\x01\x02")
    data[entry + 6] = 64  # "version needed to extract", in the central directory's first entry
    path = tmp_path / "newer.ckpt"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="newer.ckpt"):
        load_checkpoint(path)


@FUZZ
@given(changes=mutations())
def test_the_checkpoint_loader_gives_a_dict_or_a_checkpoint_error(clean_ckpt, tmp_path, changes):
    path = tmp_path / "mutated.ckpt"
    path.write_bytes(mutate(clean_ckpt, changes))
    start = time.perf_counter()
    try:
        assert isinstance(load_checkpoint(path), dict)
    except CheckpointError as err:
        assert "mutated.ckpt" in str(err)
    assert time.perf_counter() - start < 10
