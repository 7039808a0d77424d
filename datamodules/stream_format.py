"""What a photo stream holds: the layout ``optimize`` writes and ``StreamingImageDataModule`` reads back.

Each split is a LitData stream of samples ``{"index", "image", "label", "name"}``: the photo's position in the
split, the file's own bytes (decoded later by the image folder's reader), its class and its file name.
``dataset.json`` beside the splits holds the class names and, per split, the count, the labels in order and one
digest of the photos. Both are data read from storage, checked before use.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from datamodules.errors import DataError, printable
from datamodules.image_io import read_rgb

SPLITS = ("train", "val", "test")
INDEX = "dataset.json"  # beside the splits' folders: what the stream holds
FORMAT = 1
# each field of a sample and the LitData serializer it must name: plain values only (LitData also has serializers
# that unpickle or decode images and tensors of any size, which a stream from elsewhere could name)
FIELDS = {"index": "int", "image": "bytes", "label": "int", "name": "str"}
MAX_CHUNK_BYTES = 1 << 31  # a chunk LitData would read whole
MAX_INDEX_BYTES = 64 << 20
CHUNK_NAME = re.compile(r"chunk-\d{1,9}-\d{1,9}\.bin")


class NamedBytes(io.BytesIO):
    """A photo's bytes that errors name by the photo's file name, not as a buffer."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name

    def __str__(self) -> str:
        return self.name


def photo_sample(item: tuple[int, str, int]) -> dict:
    """One photo as a stream stores it (LitData's ``optimize`` calls this in its workers): its position in the
    split, the file's bytes, its label and its name. ``optimize`` has checked every header before: an error raised
    here, in LitData's workers, would stall it."""
    position, path, label = item
    return {"index": int(position), "image": Path(path).read_bytes(), "label": int(label), "name": Path(path).name}


class DecodePhoto:
    """A stream's sample as a training pair: the photo decoded by the image folder's reader, then ``transform``.
    A sample is data from storage: a label outside the classes, or other than the one ``dataset.json`` lists for
    the photo's position (``labels``), is an error naming the photo."""

    def __init__(
        self,
        transform: Callable[[torch.Tensor], torch.Tensor],
        max_pixels: int,
        classes: int,
        labels: Sequence[int] | None = None,
    ) -> None:
        self.transform, self.max_pixels, self.classes = transform, max_pixels, classes
        self.labels = labels

    def __call__(self, sample: dict) -> tuple[torch.Tensor, torch.Tensor]:
        name, label, position = printable(sample.get("name"), 200), sample.get("label"), sample.get("index")
        if not isinstance(label, int) or not 0 <= label < self.classes:
            raise DataError(f"the stream's photo {name} has the label {label!r}, not a class: write the stream again")
        if self.labels is not None and (
            not isinstance(position, int) or not 0 <= position < len(self.labels) or self.labels[position] != label
        ):
            raise DataError(
                f"the stream's photo {name} (position {position!r}) has the label {label}, not the one {INDEX} "
                "lists for it: write the stream again with optimize"
            )
        if not isinstance(sample.get("image"), (bytes, bytearray, memoryview)):
            raise DataError(f"the stream's photo {name} holds no file bytes: write the stream again with optimize")
        pixels = read_rgb(NamedBytes(sample["image"], name), self.max_pixels, "remove it and optimize again")
        return self.transform(pixels), torch.tensor(label)


class StreamOfPhotos(torch.utils.data.Dataset):
    """A split of a stream by position, in the order ``dataset.json`` lists it (a map-style dataset: the feature
    pass hands each process its positions). A sample at the wrong position is an error, never a silent mix-up of
    features and labels."""

    def __init__(self, stream, labels: Sequence[int], decode: DecodePhoto) -> None:
        self.stream, self.labels, self.decode = stream, list(labels), decode

    def __len__(self) -> int:
        return len(self.labels)  # the stream's own len is this process's share

    def __getitem__(self, position: int) -> tuple[torch.Tensor, torch.Tensor]:
        sample = self.stream[position]
        if sample["index"] != position or sample["label"] != self.labels[position]:
            raise DataError(
                f"the stream's sample {position} is photo {sample['index']} of class {sample['label']!r}, where "
                f"{INDEX} lists class {self.labels[position]}: write the stream again with optimize"
            )
        return self.decode(sample)


def split_digest(files: Sequence[Path], labels: Sequence[int], digest_of: Callable[[Path], str]) -> str:
    """One digest of a split: each photo's content digest and label, in order."""
    digest = hashlib.sha256()
    for file, label in zip(files, labels, strict=True):
        digest.update(f"{digest_of(file)} {label}\n".encode())
    return digest.hexdigest()


def index_problem(index: object) -> str | None:
    """What is wrong with a ``dataset.json`` read from storage (a file a user was given), or None. Linear time."""
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        return "no format 1"
    names = index.get("class_names")
    if not isinstance(names, list) or not 2 <= len(names) <= 100_000 or not all(isinstance(n, str) for n in names):
        return "its class_names are not a list of 2 to 100,000 names"
    for key in ("counts", "labels", "digests"):
        if not isinstance(index.get(key), dict) or set(index[key]) - set(SPLITS):
            return f"its {key} are not given by split"
    for split in SPLITS:
        count, labels = index["counts"].get(split, 0), index["labels"].get(split, [])
        if not isinstance(count, int) or not isinstance(labels, list) or len(labels) != count:
            return f"its {split} count and labels disagree"
        if not all(isinstance(x, int) and 0 <= x < len(names) for x in labels):
            return f"its {split} labels are not all classes"
        if count and not isinstance(index["digests"].get(split), str):
            return f"its {split} digest is missing"
    return None


def split_problem(folder: str, count: int) -> str | None:
    """What is wrong with a split's LitData ``index.json`` (a file from storage, checked before LitData reads any
    of it), or None: the fields and serializers the app writes, at most ``count`` samples in chunks of bounded
    size with plain names, and, for a local split, chunk files of the sizes it lists."""
    from upath import UPath

    path = UPath(folder) / "index.json"
    try:
        with path.open("rb") as handle:
            text = handle.read(MAX_INDEX_BYTES + 1)
        if len(text) > MAX_INDEX_BYTES:
            return "its index.json is larger than 64 MB"
        index = json.loads(text)
    except FileNotFoundError:
        return "it has no index.json"
    except (OSError, ValueError, RecursionError) as err:
        return f"its index.json does not read as JSON ({type(err).__name__})"
    config = index.get("config") if isinstance(index, dict) else None
    if not isinstance(config, dict):
        return "its index.json has no config"
    for key in ("compression", "encryption", "ipc_compression"):
        if config.get(key) is not None:
            return f"its chunks use {key} {printable(config[key], 40)}, which the app does not read"
    try:
        spec = json.loads(config.get("data_spec"))
        keys = json.loads(spec[1]["context"])
    except (TypeError, ValueError, KeyError, IndexError, RecursionError):
        return "its samples are not the app's (no data_spec of a dict)"
    formats = config.get("data_format")
    if (
        not isinstance(keys, list)
        or sorted(map(str, keys)) != sorted(FIELDS)
        or spec[1].get("type") != "builtins.dict"
        or not isinstance(formats, list)
        or len(formats) != len(keys)
    ):
        return f"its samples are not {{{', '.join(FIELDS)}}}"
    for key, serializer in zip(keys, formats, strict=True):
        if serializer != FIELDS[key]:
            return f"its field {key} is stored as {printable(serializer, 40)!r}, where the app reads only {FIELDS[key]}"
    chunks = index.get("chunks")
    if not isinstance(chunks, list):
        return "its index.json lists no chunks"
    total = 0
    for chunk in chunks:
        size, items, name = (
            chunk.get(k) if isinstance(chunk, dict) else None for k in ("chunk_bytes", "chunk_size", "filename")
        )
        if not isinstance(size, int) or not 0 < size <= MAX_CHUNK_BYTES or not isinstance(items, int) or items < 1:
            return "its chunks have sizes out of range"
        if not isinstance(name, str) or not CHUNK_NAME.fullmatch(name):
            return f"a chunk is named {printable(name, 60)!r}, not chunk-N-M.bin"
        total += items
        local = Path(folder) / name if "://" not in folder else None
        if local is not None and (not local.is_file() or local.stat().st_size != size):
            return f"its chunk {name} is missing or not the {size:,} bytes its index.json says"
    if total != count:
        return f"it holds {total:,} samples where {INDEX} lists {count:,}"
    return None
