"""``python -m lightning_app optimize --data_dir PHOTOS --output DIR_OR_URL``: an image folder as a LitData stream.

The splits are ``CatDogDataModule``'s (its ``train/``/``val/``/``test/`` folders, or the same seeded carving), each
written as LitData chunks that hold the photo files' own bytes, in the split's order;
``dataset.json`` beside them names the classes and lists each split's labels and a digest of its photos (the format
is ``datamodules/stream_format.py``'s). Then
``fit --data StreamingImageDataModule --data.data_dir DIR_OR_URL`` trains from the stream.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

from datamodules import CatDogDataModule
from datamodules.folder_layout import content_digest
from datamodules.image_io import MAX_PIXELS, check_header
from datamodules.stream_format import FORMAT, INDEX, MAX_CHUNK_BYTES, photo_sample, split_digest
from lightning_app.errors import SettingError, require
from lightning_app.runs.storage import location, write_text
from lightning_app.step_progress import status, track

WRITABLE = ("s3", "gs", "r2")  # the object stores LitData's optimize uploads to (litdata.constants)


def optimize_images(
    data_dir: str = "data/cats_dogs",
    output: str = "data/cats_dogs_stream",
    val_split: float = 0.2,
    test_split: float = 0.1,
    seed: int = 42,
    skip_bad_files: bool = False,
    chunk_bytes: str = "64MB",
    num_workers: int | None = None,
    max_pixels: int = MAX_PIXELS,
) -> str:
    """Write the photos of an image folder as a stream of LitData chunks, one per split, ready to train from.

    Args:
        data_dir: the image folder (one folder per class, or train/ val/ test/ with one folder per class each).
        output: a new folder or URL (``s3://bucket/photos``; LitData writes to s3, gs and r2, with s3fs or gcsfs
            installed for the index beside the chunks).
        val_split: fraction of the photos held out for validation when there is no val/ folder.
        test_split: fraction held out for testing when there is no test/ folder.
        seed: seed of the carved splits (the same as the image folder's with the same seed).
        skip_bad_files: leave out unreadable photos with a warning instead of stopping at the first.
        chunk_bytes: the size of a chunk (LitData's chunk_bytes).
        num_workers: processes writing chunks (default: the CPU cores).
        max_pixels: the largest photo accepted (checked in each file's header).
    """
    litdata = require("litdata", "stream", "optimize")
    chunk_bytes = parse_size(chunk_bytes)  # bytes, checked before any photo is read
    if num_workers is not None and (isinstance(num_workers, bool) or num_workers < 1):
        raise SettingError(f"--num_workers {num_workers}: pass 1 or more processes, or leave it out (the CPU cores)")
    target = location(output)
    if target.protocol == "file":  # file:///x is the local folder /x
        output, target = target.path, location(target.path)
    elif target.protocol and target.protocol not in WRITABLE:
        stores = ", ".join(f"{p}://" for p in WRITABLE)
        raise SettingError(f"--output {output}: LitData writes streams to a local folder or to {stores}")
    if isinstance(target, Path) and target.resolve().is_relative_to(Path(data_dir).resolve()):
        raise SettingError(f"--output {output} is inside the photo folder {data_dir}: name a folder outside it")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise SettingError(f"--output {output} already holds files: name a new folder, or delete it first")
    with claimed(target, output):
        photos = CatDogDataModule(
            data_dir=data_dir,
            val_split=val_split,
            test_split=test_split,
            seed=seed,
            skip_bad_files=skip_bad_files,
            max_pixels=max_pixels,
            num_workers=0,
        )
        splits = photos.split_files()
        hint = "remove it, or pass --skip_bad_files true" if not skip_bad_files else "remove it"

        def checked_digest(file: Path) -> str:
            """Every header checked here, in one line, before LitData's workers start (an error there stalls them)."""
            check_header(file, max_pixels, hint)
            return content_digest(file)

        index = {"format": FORMAT, "class_names": photos.class_names, "counts": {}, "labels": {}, "digests": {}}
        for split, (files, labels) in splits.items():
            index["counts"][split], index["labels"][split] = len(files), list(labels)
            checking = track(files, len(files), f"optimize: checking the {split} photos")
            index["digests"][split] = split_digest(checking, labels, checked_digest)
        workers = num_workers or len(os.sched_getaffinity(0))
        try:
            with status(f"optimize: writing the chunks with {workers} worker(s)"):
                write_splits(litdata, splits, output, workers, chunk_bytes)
        except BaseException:
            if isinstance(target, Path) and target.exists():  # a half-written local stream is not left behind
                for written in target.iterdir():
                    if written.name != ".optimize.lock":
                        shutil.rmtree(written, ignore_errors=True)
            raise
        write_text(target / INDEX, json.dumps(index) + "\n")
        counts = ", ".join(f"{n} {split}" for split, n in index["counts"].items())
        size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file()) if isinstance(target, Path) else None
        print(f"stream: {output} ({counts} photos{f', {size / 1e6:.1f} MB' if size is not None else ''})")
        print(
            f"train from it: python -m lightning_app fit -c catdog_transfer --data StreamingImageDataModule "
            f"--data.data_dir {output}"
        )
        return str(output)


@contextmanager
def claimed(target, output: str):
    """The output folder claimed by this run alone while it writes (a lock file made with O_EXCL in it): a second
    ``optimize`` to the same local folder is one line, and neither removes what the other wrote. On an object
    store (``s3://``) there is no such claim: give each run its own ``--output``."""
    if not isinstance(target, Path):
        yield
        return
    made = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    lock = target / ".optimize.lock"
    try:
        os.close(os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        raise SettingError(
            f"--output {output} is being written by another optimize: wait for it, or name another folder"
        ) from None
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        if made and not any(target.iterdir()):  # a failed run leaves no folder it made
            target.rmdir()


def parse_size(text: str | int) -> int:
    """``64MB``, ``1.5GB``, ``500KB`` or a number of bytes, from 1 KB to the 2 GiB a chunk may be read as."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?B)?\s*", str(text), re.IGNORECASE)
    units = {None: 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
    size = int(float(match.group(1)) * units[(match.group(2) or "").upper() or None]) if match else 0
    if not 1_000 <= size <= MAX_CHUNK_BYTES:
        raise SettingError(f"--chunk_bytes {text}: pass a size such as 64MB, from 1KB to 2GB")
    return size


def write_splits(litdata, splits: dict, output: str, workers: int, chunk_bytes: int) -> None:
    """Each split's photos as LitData chunks under ``output/<split>``, in the split's order."""
    for split, (files, labels) in splits.items():
        if not files:
            continue
        litdata.optimize(
            fn=photo_sample,
            inputs=[(i, str(file), label) for i, (file, label) in enumerate(zip(files, labels, strict=True))],
            output_dir=f"{str(output).rstrip('/')}/{split}",
            chunk_bytes=chunk_bytes,
            num_workers=min(workers, len(files)),
            reorder_files=False,  # the split's order, which dataset.json's labels follow
            keep_data_ordered=True,
            verbose=False,
            start_method="fork",  # workers share the loaded modules: spawn would import torch in each, per split
        )
