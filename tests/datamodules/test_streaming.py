"""Photos streamed from LitData chunks: the image folder's splits, classes and pixels; the feature pass's order."""

import json

import pytest
import torch
from lightning.pytorch import Callback

from datamodules import DataError, StreamingImageDataModule
from datamodules.stream_format import INDEX
from tests.helpers.data import photo_module


def stream_module(stream, **kwargs) -> StreamingImageDataModule:
    return StreamingImageDataModule(
        data_dir=str(stream), **{"batch_size": 4, "num_workers": 0, "image_size": 32, **kwargs}
    )


def test_a_stream_holds_the_folders_classes_splits_and_pixels(photo_stream):
    photos, stream = photo_stream
    folder, streamed = photo_module(photos), stream_module(stream)
    assert streamed.class_names == folder.class_names == ["cat", "dog"]
    for split, (files, labels) in folder.split_files().items():
        images, expected, _ = folder.feature_inputs(split)
        got, got_labels, _ = streamed.feature_inputs(split)
        assert len(got) == len(files) and torch.equal(got_labels, expected)
        for i in range(len(files)):  # the same decoded, centre-cropped pixels, in the same order
            assert torch.equal(got[i][0], images[i][0]) and int(got[i][1]) == labels[i]


def test_the_training_loader_streams_every_training_photo_once_an_epoch(photo_stream):
    photos, stream = photo_stream
    data = stream_module(stream, augment=False)
    data.setup("fit")
    batches = list(data.train_dataloader())
    images = torch.cat([x for x, _ in batches])
    assert images.dtype == torch.uint8 and images.shape[1:] == (3, 32, 32)
    assert len(images) == len(photo_module(photos).split_files()["train"][0])
    assert len({bytes(row.numpy()) for row in images.flatten(1)}) == len(images)  # each photo once


def test_the_cache_key_follows_the_photos_digest(photo_stream, tmp_path):
    _, stream = photo_stream
    key = stream_module(stream).feature_inputs("val")[2]
    copy = tmp_path / "copy"
    copy.mkdir()
    for item in stream.iterdir():  # the same chunks, another digest in the index
        if item.is_dir():
            (copy / item.name).symlink_to(item)
    index = json.loads((stream / INDEX).read_text())
    index["digests"]["val"] = "0" * 64
    (copy / INDEX).write_text(json.dumps(index))
    assert stream_module(copy).feature_inputs("val")[2] != key


def test_a_sample_out_of_place_or_of_another_class_is_an_error_not_a_mixup(photo_stream):
    _, stream = photo_stream
    photos, labels, _ = stream_module(stream).feature_inputs("train")
    photos.stream = [photos.stream[1], photos.stream[0]]  # two samples swapped in storage
    with pytest.raises(DataError, match="the stream's sample 0 is photo 1 of class"):
        photos[0]
    photos.stream = [{**photos.stream[1], "index": 0, "label": 1 - int(labels[0])}]
    with pytest.raises(DataError, match="where dataset.json lists class"):
        photos[0]
    decode = photos.decode
    with pytest.raises(DataError, match="has the label 7, not a class"):
        decode({**photos.stream[0], "label": 7})


@pytest.mark.parametrize(
    "index, message",
    [
        (None, "not found: write the stream first with `python -m lightning_app optimize"),
        ("not json", "is not a stream's index"),
        ('{"format": 99, "class_names": ["a", "b"]}', "is not a stream's index of format 1"),
        ("[1, 2]", "is not a stream's index of format 1"),
        (
            '{"format": 1, "class_names": ["a", "b"], "counts": {"train": 1}, "labels": {"train": [5]}, '
            '"digests": {"train": "x"}}',
            "its train labels are not all classes",
        ),
        (
            '{"format": 1, "class_names": ["a", "b"], "counts": {"train": 2}, "labels": {"train": [1]}, "digests": {}}',
            "its train count and labels disagree",
        ),
    ],
)
def test_a_missing_or_bad_index_is_one_line(tmp_path, index, message):
    if index is not None:
        (tmp_path / INDEX).write_text(index)
    with pytest.raises(DataError, match=message):
        _ = stream_module(tmp_path).class_names


class Seen(Callback):
    """The training photos of each batch, identified by their pixels."""

    def __init__(self) -> None:
        self.batches: list[list[bytes]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches.append([bytes(row.numpy()) for row in batch[0].flatten(1)])


@pytest.mark.long
def test_a_run_resumes_mid_epoch_with_the_photos_it_had_not_seen(photo_stream, tmp_path):
    """LitData's loader state is in Lightning's checkpoint: resumed from step 3 of 5, the run sees the last two
    batches of the uninterrupted epoch, in their order."""
    from lightning.pytorch import Trainer
    from lightning.pytorch.callbacks import ModelCheckpoint

    from modules import TransferModel

    _, stream = photo_stream

    def fit(seen: Seen, ckpt_path=None, checkpoints=()):
        data = stream_module(stream, batch_size=3, augment=False)
        model = TransferModel(backbone="resnet18", weights="none", num_classes=2)
        trainer = Trainer(
            max_epochs=1,
            callbacks=[seen, *checkpoints],
            default_root_dir=tmp_path,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
        )
        trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)

    straight = Seen()
    every = ModelCheckpoint(tmp_path / "ckpt", every_n_train_steps=3, save_top_k=-1, filename="{step}")
    fit(straight, checkpoints=[every])
    assert len(straight.batches) == 6  # 17 photos in batches of 3
    resumed = Seen()
    fit(resumed, ckpt_path=tmp_path / "ckpt" / "step=3.ckpt")
    assert resumed.batches == straight.batches[3:]


def test_a_split_too_small_for_every_process_is_one_line(photo_stream):
    from types import SimpleNamespace

    _, stream = photo_stream
    data = stream_module(stream, batch_size=2)
    data.trainer = SimpleNamespace(world_size=2)  # the test split's 2 photos: one batch, for one process alone
    data.setup("test")
    with pytest.raises(DataError, match="make less than one batch of 2 for each of the 2 processes"):
        data.test_dataloader()


@pytest.mark.parametrize("setting", [{"image_size": 4}, {"std": [0.5, 0.0, 0.5]}, {"mean": [0.5]}])
def test_a_streams_settings_are_checked_as_the_folders(photo_stream, setting):
    _, stream = photo_stream
    with pytest.raises(DataError, match="image_size must be|std must be|mean must be"):
        stream_module(stream, **setting)
