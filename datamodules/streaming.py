"""Photos that stream from storage in LitData's chunks: for image sets too large for one disk or one listing.

``python -m lightning_app optimize`` writes an image folder as one LitData stream per split (``train/``, ``val/``,
``test/``) plus ``dataset.json``, on a local folder or any storage LitData writes to (``s3://``, ``gs://``, ...);
what they hold is ``stream_format.py``'s. A sample holds the photo file's own bytes,
so the stream decodes with the image folder's reader and transforms: the same pixels, classes and splits as
``CatDogDataModule``. LitData gives each DDP process and each loader worker its own chunks, and its loader's
state goes into Lightning's checkpoints, so a run resumes mid-epoch where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cached_property

import torch
from torch.utils.data import ConcatDataset
from upath import UPath

from datamodules.base import ClassificationDataModule, Inventory
from datamodules.errors import DataError
from datamodules.image_folder import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    check_photo_settings,
    eval_transform,
    train_transform,
)
from datamodules.image_io import MAX_PIXELS
from datamodules.stream_format import (
    FORMAT,
    INDEX,
    SPLITS,
    DecodePhoto,
    StreamOfPhotos,
    index_problem,
    split_problem,
)
from datamodules.tensor_dataset import TensorBatchDataset


def litdata():
    """LitData, an optional dependency (the ``[stream]`` extra), or one line that says how to install it."""
    try:
        import litdata as module
    except ImportError:
        raise DataError("streamed photos need the package litdata: pip install -e '.[stream]'") from None
    return module


class StreamingImageDataModule(ClassificationDataModule):
    """Train, validate, test and predict from a stream that ``python -m lightning_app optimize`` wrote.

    Args:
        data_dir: the stream: a folder or a URL (``s3://bucket/photos``) holding ``dataset.json`` and the splits.
        batch_size: images per batch.
        seed: seed of the training stream's shuffling.
        num_workers: loader processes; LitData gives each its own chunks.
        image_size: side of the square crop fed to the network (224 as in the lesson).
        augment: the lesson's random training transforms; off, training uses the evaluation transforms.
        mean: per-channel mean for normalisation; None takes ImageNet's (the CLI fills in the backbone's own).
        std: per-channel std, as ``mean``.
        cache_dir: where chunks of a remote stream are kept while read (LitData's default when None).
        predict_path: an image file or folder for ``predict`` (default: the test split).
        max_pixels: the largest image decoded; a larger one is a bad file.
    """

    def __init__(
        self,
        data_dir: str = "data/cats_dogs_stream",
        batch_size: int = 32,
        seed: int = 42,
        num_workers: int = 2,
        image_size: int = 224,
        augment: bool = True,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        cache_dir: str | None = None,
        predict_path: str | None = None,
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        super().__init__(
            batch_size, 0.0, seed, num_workers, mean or IMAGENET_MEAN, std or IMAGENET_STD, predict_path, max_pixels
        )
        check_photo_settings(image_size, self.mean, self.std)
        self.save_hyperparameters()
        self.data_dir = data_dir.rstrip("/")
        self.image_size = image_size
        self.augment = augment
        self.cache_dir = cache_dir
        self.streams: dict[str, object] = {}
        self.train_loader = None
        self.train_loader_state: dict | None = None  # a checkpoint's, put into the next training loader
        self.features: dict[str, TensorBatchDataset] = {}
        self.cached_views = 0

    @cached_property
    def index(self) -> dict:
        """``dataset.json``: class names, the photos and labels of each split, and their digests."""
        path = UPath(self.data_dir) / INDEX
        try:
            with path.open("rb") as handle:
                text = handle.read(64 << 20)  # never trusted to be small: the index of 10 million photos fits
            index = json.loads(text)
        except FileNotFoundError:
            raise DataError(
                f"{path} not found: write the stream first with `python -m lightning_app optimize --data_dir PHOTOS "
                f"--output {self.data_dir}`"
            ) from None
        except (OSError, ValueError, RecursionError) as err:
            raise DataError(
                f"{path} is not a stream's index ({type(err).__name__}): write the stream again with optimize"
            ) from None
        problem = index_problem(index)
        if problem:
            raise DataError(f"{path} is not a stream's index of format {FORMAT} ({problem}): write the stream again")
        return index

    @property
    def class_names(self) -> list[str]:
        return [str(name) for name in self.index["class_names"]]

    def _stream(self, split: str, shuffle: bool, decode: bool = True):
        transform = train_transform(self.image_size) if split == "train" and self.augment else None
        module = litdata()
        problem = split_problem(f"{self.data_dir}/{split}", int(self.index["counts"].get(split, 0)))
        if problem:
            raise DataError(f"the stream's {split} split at {self.data_dir} is not one optimize writes: {problem}")
        return module.StreamingDataset(
            f"{self.data_dir}/{split}",
            cache_dir=self.cache_dir,
            shuffle=shuffle,
            drop_last=False if not shuffle else None,  # None: LitData's choice (True under DDP, for equal shares)
            seed=self.seed,
            transform=self._decoder(transform or eval_transform(self.image_size), split) if decode else None,
        )

    def _decoder(self, transform: Callable[[torch.Tensor], torch.Tensor], split: str | None = None) -> DecodePhoto:
        labels = self.index["labels"][split] if split else None
        return DecodePhoto(transform, self.max_pixels, len(self.class_names), labels)

    def _photos(self, split: str, transform: Callable[[torch.Tensor], torch.Tensor]) -> StreamOfPhotos:
        """``split`` by position, each photo checked against ``dataset.json`` and decoded through ``transform``."""
        stream = self._stream(split, shuffle=False, decode=False)
        return StreamOfPhotos(stream, self.index["labels"][split], self._decoder(transform))

    def inventory(self) -> Inventory:
        """Every photo of every split, decoded whole, named ``split/position`` (the stream keeps the order of
        ``dataset.json``)."""
        present = [split for split in SPLITS if self.index["counts"].get(split, 0)]
        parts = [self._photos(split, torch.nn.Identity()) for split in present]
        names = [f"{split}/{i}" for split, part in zip(present, parts, strict=True) for i in range(len(part))]
        splits = [split for split, part in zip(present, parts, strict=True) for _ in range(len(part))]
        labels = torch.tensor([label for part in parts for label in part.labels], dtype=torch.long)
        return Inventory(names, labels, splits, ConcatDataset(parts))

    def setup(self, stage: str) -> None:
        self.follow_model()
        for split in SPLITS:
            if split not in self.streams and self.index["counts"].get(split, 0):
                self.streams[split] = self._stream(split, shuffle=split == "train")

    def _loader(self, split: str):
        if split in self.features:  # backbone features: kept on the device, loaded in large batches
            views = max(1, self.cached_views) if split == "train" else 1
            return self.resident_loader(split, self.features[split], split == "train", views=views)
        if split not in self.streams:
            return []
        world = self.trainer.world_size if self.trainer is not None else 1
        count = self.index["counts"][split]
        if world > 1 and count // self.batch_size < world:  # LitData shares out whole batches: one would get none
            raise DataError(
                f"the {split} split's {count} photos make less than one batch of {self.batch_size} for each of the "
                f"{world} processes: lower --data.batch_size, or hold out more photos when you optimize"
            )
        return litdata().StreamingDataLoader(
            self.streams[split],
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self):
        loader = self._loader("train")
        if self.train_loader_state is not None and "train" not in self.features:
            loader.load_state_dict(self.train_loader_state)
            self.train_loader_state = None
        self.train_loader = loader
        return loader

    # ---- where in an epoch a resumed run goes on ----------------------------------------------------------

    def state_dict(self) -> dict:
        """The training loader's position, in the checkpoint through the datamodule's own state.

        Lightning saves a stateful loader's state too, but 2.6 drops it on resume when ``configure_optimizers``
        reads ``trainer.estimated_stepping_batches`` (as the lesson's schedule does; Lightning issue 20550): the
        loader is then built before the checkpoint is read and never given its state. The datamodule's state is
        read before any loader is built, so :meth:`train_dataloader` hands it on."""
        loader = self.train_loader
        if loader is None or "train" in self.features or not hasattr(loader, "state_dict"):
            return {}
        return {"train_loader": loader.state_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.train_loader_state = state_dict.get("train_loader") or None

    def val_dataloader(self):
        return self._loader("val")

    def test_dataloader(self):
        return self._loader("test")

    def predict_transform(self) -> Callable[[torch.Tensor], torch.Tensor]:
        return eval_transform(self.image_size)

    def sample_images(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        split = "val" if self.index["counts"].get("val", 0) else "test"
        photos = self._photos(split, eval_transform(self.image_size))
        items = [photos[i] for i in range(min(n, len(photos)))]
        return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])

    # ---- features of a frozen backbone, computed once (the app's FeatureCache) ---------------------------

    def feature_inputs(self, split: str, views: int = 1) -> tuple[StreamOfPhotos | list, torch.Tensor, str]:
        """The photos of ``split`` for a feature pass (indexable: each process reads its share), their labels, and
        what identifies them for a cache key: the digest of the split's photos that optimize wrote, which the
        stream's chunks were made from, the transform and the normalisation."""
        augmented = split == "train" and views > 1
        transform = train_transform(self.image_size) if augmented else eval_transform(self.image_size)
        labels = torch.tensor(self.index["labels"][split], dtype=torch.long)
        identity = json.dumps(
            {
                "stream": self.data_dir,
                "photos": self.index["digests"][split],
                "transform": repr(transform),
                "mean": self.mean.flatten().tolist(),
                "std": self.std.flatten().tolist(),
                "views": views if augmented else 1,
            }
        )
        if not len(labels):
            return [], labels, identity
        return self._photos(split, transform), labels.repeat(views if augmented else 1), identity

    def use_features(self, split: str, features: torch.Tensor, labels: torch.Tensor, views: int = 1) -> None:
        """Train, validate or test on ``features`` (N, F) instead of the stream of ``split`` from now on."""
        self.features[split] = TensorBatchDataset(features, labels)
        if split == "train":
            self.cached_views = views
