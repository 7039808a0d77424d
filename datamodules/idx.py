"""One base for the 28x28 idx data sets (MNIST, Fashion-MNIST): decoded once, kept as uint8 tensors."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import torch
from torch.utils.data import DataLoader
from torchvision.datasets import VisionDataset
from torchvision.transforms import v2

from datamodules.base import ClassificationDataModule, Inventory
from datamodules.device_batches import DeviceBatches
from datamodules.errors import DataError
from datamodules.image_io import MAX_PIXELS, reader
from datamodules.tensor_dataset import TensorBatchDataset, keep_batch


class IdxDataModule(ClassificationDataModule):
    """Train/val/test loaders over an idx data set held in memory as one uint8 tensor.

    torchvision's own dataset class fetches, verifies and parses the files; after that every batch is an
    index into a (N, 1, 28, 28) uint8 tensor, moved to the device as bytes and normalised there with the
    lesson's ``Normalize((0.5,), (0.5,))``. The validation set is carved from the training set with a fixed
    seed; the official test set stays the test set. Under DDP, Lightning gives each rank its own shard.

    Args:
        data_dir: folder holding ``<Name>/raw/*.gz`` (downloaded there when missing).
        batch_size: samples per batch (the lesson's 64).
        val_split: fraction of the training set held out for validation, in [0, 1).
        seed: seed of the train/val split.
        num_workers: DataLoader worker processes (0 is fastest for in-memory tensors).
        download: fetch missing files with torchvision.
        predict_path: an image file or folder for ``predict`` (any size; made grey 28x28), default the test split.
        on_device: keep each split normalised on the training device (4 bytes a pixel, about 220 MB for MNIST)
            and slice batches there, without a DataLoader; ``num_workers`` is then unused.
        max_pixels: the largest image ``predict`` decodes (checked in the file's header, before decoding).
    """

    dataset_class: ClassVar[type[VisionDataset]]
    class_names: ClassVar[list[str]]

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 64,
        val_split: float = 0.1,
        seed: int = 42,
        num_workers: int = 0,
        download: bool = True,
        predict_path: str | None = None,
        on_device: bool = True,
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        super().__init__(batch_size, val_split, seed, num_workers, (0.5,), (0.5,), predict_path, max_pixels)
        self.save_hyperparameters()
        self.data_dir = data_dir
        self.download = download
        self.on_device = on_device
        self.train_set: TensorBatchDataset | None = None
        self.val_set: TensorBatchDataset | None = None
        self.test_set: TensorBatchDataset | None = None

    @property
    def raw_folder(self) -> Path:
        return Path(self.data_dir) / self.dataset_class.__name__ / "raw"

    def _missing_files(self) -> list[str]:
        names = [os.path.basename(url) for url, _ in self.dataset_class.resources]
        return [n for n in names if not (self.raw_folder / n).exists() and not (self.raw_folder / n[:-3]).exists()]

    def predicting_own_files(self) -> bool:
        """``predict --data.predict_path FILES``: the user's files and the checkpoint are all it needs."""
        return bool(self.predict_path) and self.trainer is not None and self.trainer.predicting

    def prepare_data(self) -> None:
        """Download (or verify and extract local archives) once, on one process per node."""
        if not self.download or self.predicting_own_files():
            return
        missing = self._missing_files()
        chatter = io.StringIO()
        try:
            with contextlib.redirect_stdout(chatter):
                self.dataset_class(self.data_dir, train=True, download=True)
                self.dataset_class(self.data_dir, train=False, download=True)
        except (RuntimeError, OSError) as err:
            files = ", ".join(missing) or "the idx archives"
            raise DataError(
                f"{self.dataset_class.__name__} is not in {self.raw_folder}/ and could not be downloaded "
                f"({str(err).splitlines()[0].rstrip(':')}): put {files} into "
                f"{self.raw_folder}/ (torchvision's file names) and run again"
            ) from err

    def _load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        name = self.dataset_class.__name__
        try:
            ds = self.dataset_class(self.data_dir, train=train, download=False)
        except RuntimeError as err:
            if "not found" not in str(err).lower():
                raise self._unreadable(train, err) from err
            raise DataError(
                f"{name} not found in {self.raw_folder}/: put "
                f"{', '.join(self._missing_files()) or 'the idx files'} there or pass --data.download true"
            ) from err
        except (AssertionError, ValueError, IndexError, TypeError) as err:
            raise self._unreadable(train, err) from err
        images, labels = ds.data, ds.targets
        if images.dtype != torch.uint8 or images.ndim != 3:
            raise self._unreadable(train, f"images are {images.dtype} {tuple(images.shape)}, not uint8 (N, H, W)")
        if len(images) != len(labels):
            raise DataError(
                f"{self.raw_folder}: {len(images)} images but {len(labels)} labels in the "
                f"{'training' if train else 'test'} files: delete both files and download them again"
            )
        labels = labels.long()
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.class_names)):
            raise self._unreadable(
                train,
                f"labels run from {int(labels.min())} to {int(labels.max())}, not 0 to {len(self.class_names) - 1}",
            )
        return images.unsqueeze(1).contiguous(), labels

    def _unreadable(self, train: bool, reason: object) -> DataError:
        prefix = "train" if train else "t10k"
        return DataError(
            f"the {prefix} idx files in {self.raw_folder}/ are truncated or not idx files "
            f"({(str(reason).splitlines() or [type(reason).__name__])[0][:120]}): delete them and download again"
        )

    def split_indices(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Disjoint train/val indices, the same for the same seed."""
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        n_val = int(round(n * self.val_split))
        return perm[n_val:], perm[:n_val]

    def setup(self, stage: str) -> None:
        self.follow_model()
        if stage in ("fit", "validate") and self.train_set is None:
            images, labels = self._load(train=True)
            train_idx, val_idx = self.split_indices(len(images))
            self.train_set = TensorBatchDataset(images[train_idx], labels[train_idx])
            self.val_set = TensorBatchDataset(images[val_idx], labels[val_idx])
        if stage == "predict" and self.predict_path:
            return  # the user's own files: the idx archives are not needed
        if stage in ("test", "predict") and self.test_set is None:
            self.test_set = TensorBatchDataset(*self._load(train=False))

    def inventory(self) -> Inventory:
        """The training file's images (train and val, as :meth:`split_indices` splits them) and the test file's,
        named by their position in their file (``train[i]``, ``test[i]``)."""
        train_images, train_labels = self._load(train=True)
        test_images, test_labels = self._load(train=False)
        train_idx, val_idx = self.split_indices(len(train_images))
        splits = ["train"] * len(train_images)
        for i in val_idx.tolist():
            splits[i] = "val"
        names = [f"train[{i}]" for i in range(len(train_images))] + [f"test[{i}]" for i in range(len(test_images))]
        return Inventory(
            names,
            torch.cat([train_labels, test_labels]),
            splits + ["test"] * len(test_images),
            torch.cat([train_images, test_images]),
        )

    def _loader(self, split: str, shuffle: bool) -> DataLoader | DeviceBatches:
        dataset: TensorBatchDataset | None = getattr(self, f"{split}_set")
        if not self.on_device or dataset is None:
            return self.make_loader(dataset, shuffle=shuffle, collate_fn=keep_batch, grouped=True)
        return self.resident_loader(split, dataset, shuffle)

    def train_dataloader(self) -> DataLoader | DeviceBatches:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | DeviceBatches:
        if self.val_split == 0:
            return []
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader | DeviceBatches:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """As the base's, but always a DataLoader: the prediction pictures read images from its dataset."""
        if self.predict_path or not self.on_device:
            return super().predict_dataloader()
        self.predict_files = []
        return self.make_loader(self.test_set, shuffle=False, collate_fn=keep_batch, grouped=True)

    def predict_reader(self) -> Callable[[Path], torch.Tensor]:
        return reader(grey=True, max_pixels=self.max_pixels)

    def predict_transform(self) -> Callable[[torch.Tensor], torch.Tensor]:
        return v2.Resize((28, 28), antialias=True)

    def test_samples(self, indices: Sequence[int]) -> tuple[torch.Tensor, list[str]]:
        """Test images by position (the idx files name no files: ``test[i]``)."""
        if self.test_set is None:
            self.setup("test")
        return self.test_set.images[list(indices)], [f"test[{i}]" for i in indices]

    def sample_images(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.val_set is None and self.test_set is None:
            self.setup("fit")
        dataset = self.val_set if self.val_set is not None and len(self.val_set) else self.test_set
        return dataset.images[:n], dataset.labels[:n]
