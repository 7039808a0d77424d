"""A stream is data: an index.json that names other serializers, chunks that are missing, short, huge or named out
of their folder, a split without an index, labels changed in the chunks: one DataError line, before LitData
decodes anything."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datamodules import DataError, StreamingImageDataModule
from datamodules.stream_format import INDEX


@pytest.fixture
def stream_copy(photo_stream, tmp_path) -> Path:
    _, stream = photo_stream
    copy = tmp_path / "stream"
    shutil.copytree(stream, copy)
    return copy


def setup_and_read(stream: Path) -> None:
    data = StreamingImageDataModule(data_dir=str(stream), batch_size=4, num_workers=0, image_size=32, augment=False)
    data.setup("fit")
    for _ in data.train_dataloader():
        pass


def edit_index(stream: Path, split: str, change) -> None:
    path = stream / split / "index.json"
    index = json.loads(path.read_text())
    change(index)
    path.write_text(json.dumps(index))


def serializer(name: str):
    def change(index):
        formats = index["config"]["data_format"]
        keys = json.loads(json.loads(index["config"]["data_spec"])[1]["context"])
        formats[keys.index("image")] = name

    return change


CRAFTED = {
    "pickle": (serializer("pickle"), "field image is stored as 'pickle'"),
    "jpeg": (serializer("jpeg"), "field image is stored as 'jpeg'"),
    "tensor": (serializer("tensor"), "field image is stored as 'tensor'"),
    "compression": (lambda i: i["config"].update(compression="zstd"), "use compression zstd"),
    "huge chunk": (lambda i: i["chunks"][0].update(chunk_bytes=10**12), "sizes out of range"),
    "short chunk": (lambda i: i["chunks"][0].update(chunk_bytes=i["chunks"][0]["chunk_bytes"] + 1), "not the"),
    "chunk outside": (lambda i: i["chunks"][0].update(filename="../../secret.bin"), "not chunk-N-M.bin"),
    "more samples": (lambda i: i["chunks"][0].update(chunk_size=i["chunks"][0]["chunk_size"] + 5), "holds"),
    "other fields": (lambda i: i["config"].update(data_spec="[1, {}]"), "not the app's"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_a_crafted_split_index_is_one_line(stream_copy, case):
    change, says = CRAFTED[case]
    edit_index(stream_copy, "train", change)
    with pytest.raises(DataError, match="the stream's train split") as err:
        setup_and_read(stream_copy)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_missing_chunk_or_index_is_one_line(stream_copy):
    (stream_copy / "val" / "index.json").unlink()
    with pytest.raises(DataError, match="val split .* has no index.json"):
        setup_and_read(stream_copy)
    for chunk in (stream_copy / "train").glob("chunk-*.bin"):
        chunk.unlink()
    with pytest.raises(DataError, match="train split .* missing"):
        setup_and_read(stream_copy)


def test_a_deeply_nested_dataset_json_is_one_line(stream_copy):
    (stream_copy / INDEX).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DataError, match="is not a stream's index"):
        assert StreamingImageDataModule(data_dir=str(stream_copy)).class_names


def test_labels_changed_inside_the_chunks_are_an_error_not_a_silent_zero(stream_copy):
    """dataset.json and the chunks disagree on the photos' classes: named, never trained or tested on."""
    index = json.loads((stream_copy / INDEX).read_text())
    index["labels"]["train"] = [1 - label for label in index["labels"]["train"]]
    (stream_copy / INDEX).write_text(json.dumps(index))
    with pytest.raises(DataError, match="not the one dataset.json lists"):
        setup_and_read(stream_copy)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    junk=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
        max_leaves=12,
    )
)
def test_any_index_json_is_read_or_refused_in_one_line(stream_copy, junk):
    (stream_copy / "train" / "index.json").write_text(json.dumps(junk))
    with pytest.raises(DataError) as err:
        setup_and_read(stream_copy)
    assert "\n" not in str(err.value)
