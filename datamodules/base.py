"""What every datamodule here shares: validated settings, loaders, and normalising uint8 batches on the device."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from datamodules.device_batches import DeviceBatches
from datamodules.errors import DataError
from datamodules.image_io import MAX_PIXELS, ImageFileDataset, list_image_files, reader
from datamodules.tensor_dataset import EpochShuffleSampler, TensorBatchDataset

PREDICT_PIXELS = 64 * 224 * 224  # pixels in one batch of `predict` on one's own files: 64 photos at the lesson's size


class Inventory(NamedTuple):
    """Every item of every split, as ``fit`` splits them: what ``check`` reads.

    ``images[i]`` is item ``i`` whole, as uint8 (C, H, W) before any resizing: a tensor of them (idx data), or a
    dataset whose items are ``(image, label)`` and which raises ``DataError`` for an unreadable file.
    """

    names: list[str]  # a file's path, a stream's ``train/17``, or ``train[i]`` in an idx file
    labels: torch.Tensor
    splits: list[str]  # train, val or test
    images: torch.Tensor | Dataset


class ClassificationDataModule(LightningDataModule):
    """Base of the datamodules: loaders yield ``(uint8 images, labels)``; floats are made on the device.

    Batches travel to the device as bytes (4x less to copy than float32) and are scaled to [0, 1] and
    normalised with ``mean``/``std`` in :meth:`on_after_batch_transfer`. Batches that are already float
    (cached backbone features) pass through untouched.
    """

    class_names: list[str]
    # optimizer steps each loaded batch holds (set by the app's fast path); loaders of tensors load
    # ``batch_size * steps_per_load`` samples at once, and evaluation loaders as many
    steps_per_load: int = 1

    def __init__(
        self,
        batch_size: int,
        val_split: float,
        seed: int,
        num_workers: int,
        mean: Sequence[float],
        std: Sequence[float],
        predict_path: str | None = None,
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise DataError(f"batch_size must be a positive integer, got {batch_size}: pass e.g. --data.batch_size 64")
        if not 0 <= val_split < 1:
            raise DataError(f"val_split must be in [0, 1), got {val_split}: pass e.g. --data.val_split 0.1")
        if num_workers < 0:
            raise DataError(f"num_workers must be >= 0, got {num_workers}")
        if max_pixels < 1:
            raise DataError(f"max_pixels must be a positive integer, got {max_pixels}")
        self.max_pixels = max_pixels
        self.batch_size = batch_size
        self.val_split = val_split
        self.seed = seed
        self.num_workers = num_workers
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self._stats: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self._resident: dict[tuple[str, torch.device], tuple[torch.Tensor, torch.Tensor, TensorBatchDataset]] = {}
        self.predict_path = predict_path
        self.predict_files: list[Path] = []

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def load_size(self) -> int:
        """Samples per loaded batch of tensors: ``steps_per_load`` optimizer steps of ``batch_size``."""
        return self.batch_size * max(1, int(self.steps_per_load))

    def make_loader(
        self,
        dataset: Dataset | None,
        shuffle: bool,
        collate_fn: Callable | None = None,
        grouped: bool = False,
        batch_size: int | None = None,
    ) -> DataLoader:
        """A DataLoader; ``grouped`` (tensor data sets) loads ``load_size`` samples a batch, ``batch_size`` another
        number than ``self.batch_size``."""
        if dataset is None:
            raise RuntimeError("setup() has not run for this stage")
        return DataLoader(
            dataset,
            batch_size=self.load_size if grouped else batch_size or self.batch_size,
            sampler=EpochShuffleSampler(dataset, self.seed) if shuffle else None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=collate_fn,
            pin_memory=torch.cuda.is_available(),
        )

    def resident_loader(self, name: str, dataset: TensorBatchDataset, shuffle: bool, views: int = 1) -> DeviceBatches:
        """Batches sliced from ``dataset`` kept on the training device: uint8 images normalised there once,
        float tensors (features) as they are; ``load_size`` samples a batch, each rank its own shard."""
        trainer = self.trainer
        device = trainer.strategy.root_device if trainer else torch.device("cpu")
        kept = self._resident.get((name, device))
        if kept is None or kept[2] is not dataset:
            images = dataset.images.to(device)
            self._resident[name, device] = (
                self.normalize(images) if images.dtype == torch.uint8 else images,
                dataset.labels.to(device),
                dataset,
            )
        images, labels, _ = self._resident[name, device]
        rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        return DeviceBatches(images, labels, self.load_size, shuffle, self.seed, rank, world, views)

    def predict_transform(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """How a user's image file becomes a network input (before normalisation)."""
        raise NotImplementedError

    def predict_reader(self) -> Callable[[Path], torch.Tensor]:
        """How a user's image file is read (RGB here; grey for the 28x28 data sets), within ``max_pixels``."""
        return reader(max_pixels=self.max_pixels)

    def sample_images(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Up to ``n`` uint8 validation images and their labels, for pictures of predictions."""
        raise NotImplementedError

    def predict_dataloader(self) -> DataLoader:
        """The readable files under ``predict_path`` (their names in ``predict_files``), or else the test split."""
        if not self.predict_path:
            self.predict_files = []
            return self.test_dataloader()
        read = self.predict_reader()
        self.predict_files = readable_files(list_image_files(self.predict_path), read)
        labels = [-1] * len(self.predict_files)
        dataset = ImageFileDataset(self.predict_files, labels, self.predict_transform(), read)
        side = int(getattr(self, "image_size", 28))
        batch = max(1, min(self.batch_size, PREDICT_PIXELS // (side * side)))  # a checkpoint's batch, within budget
        return self.make_loader(dataset, shuffle=False, batch_size=batch)

    def follow_model(self, model: object | None = None) -> None:
        """Normalise as ``model`` says it needs (``input_mean``/``input_std``: a transfer model's backbone), by
        default the model of the Trainer this datamodule is attached to; a model that says nothing leaves this
        datamodule's own ``mean``/``std``. Each ``setup`` calls it first, before a feature pass reads them."""
        if model is None:
            model = getattr(self.trainer, "lightning_module", None)
        mean, std = getattr(model, "input_mean", None), getattr(model, "input_std", None)
        if mean is None or std is None:
            return
        self.mean = torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1)
        self._stats.clear()
        self._resident.clear()

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images to float in [0, 1], then ``(x - mean) / std`` (the lesson's ToTensor + Normalize)."""
        if images.device not in self._stats:  # copied once per device: a copy per batch would sync a GPU
            self._stats[images.device] = (self.mean.to(images.device), self.std.to(images.device))
        mean, std = self._stats[images.device]
        return images.float().div_(255).sub_(mean).div_(std)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Normalise uint8 images on the device they have just reached."""
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        if images.dtype != torch.uint8:
            return batch
        if isinstance(batch, (tuple, list)):
            return (self.normalize(images), *batch[1:])
        return self.normalize(images)


def readable_files(files: list[Path], read: Callable[[Path], torch.Tensor]) -> list[Path]:
    """The files ``read`` can decode; the others are named in a warning (none at all is an error).

    Every process checks every file before predicting, so under DDP all ranks drop the same ones: a bad file
    met half-way by one rank would leave the others waiting in a collective call.
    """
    good, bad = [], []
    for file in files:
        try:
            read(file)
            good.append(file)
        except DataError as err:
            bad.append(str(err))
    if bad and not good:
        raise DataError(f"none of the {len(files)} file(s) can be read: {bad[0]}")
    if bad:
        warnings.warn(f"left out {len(bad)} unreadable file(s): {'; '.join(bad[:3])}", stacklevel=2)
    return good
