"""An image-folder datamodule for photos (cats vs dogs, or any classes), with the lesson's transforms."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.models import ResNet18_Weights
from torchvision.transforms import v2

from datamodules.base import ClassificationDataModule, Inventory
from datamodules.device_batches import DeviceBatches
from datamodules.errors import DataError
from datamodules.folder_layout import class_folders, content_digest, list_images
from datamodules.image_io import MAX_ASPECT, MAX_PIXELS, ImageFileDataset, reader
from datamodules.split_groups import canonical, duplicate_groups, excluded_names, keep_together
from datamodules.tensor_dataset import TensorBatchDataset

# the statistics torchvision's ImageNet weights were trained with (their preset transform says them)
_IMAGENET = ResNet18_Weights.IMAGENET1K_V1.transforms()
IMAGENET_MEAN, IMAGENET_STD = tuple(_IMAGENET.mean), tuple(_IMAGENET.std)


def train_transform(size: int = 224) -> v2.Compose:
    """The lesson's training augmentation: RandomRotation(30), RandomResizedCrop(224), RandomHorizontalFlip."""
    return v2.Compose([v2.RandomRotation(30), v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()])


def eval_transform(size: int = 224) -> v2.Compose:
    """The lesson's evaluation transform: Resize(255), CenterCrop(224) (scaled alike for other sizes). The long
    side is capped at ``MAX_ASPECT`` times the short one, the most the reader lets through, so what an image
    becomes is bounded whatever it is (a tensor given to the Predictor is not read)."""
    resize = round(size * 255 / 224)
    return v2.Compose([v2.Resize(resize, max_size=MAX_ASPECT * resize + 1, antialias=True), v2.CenterCrop(size)])


MAX_SIDE = 1024  # the crop's side: a backbone's activations at 4096 x 4096 take gigabytes for one photo


def check_photo_settings(image_size: int, mean: torch.Tensor, std: torch.Tensor) -> None:
    """What every photo datamodule asks of its settings: a bounded crop, 3 finite means and 3 stds above 0."""
    if not 8 <= image_size <= MAX_SIDE:
        raise DataError(f"image_size must be 8 to {MAX_SIDE} pixels, got {image_size}: pass e.g. --data.image_size 224")
    for name, values in (("mean", mean), ("std", std)):
        if values.numel() != 3 or not torch.isfinite(values).all() or (name == "std" and (values <= 0).any()):
            raise DataError(
                f"{name} must be 3 finite numbers (red, green, blue){', above 0' if name == 'std' else ''}, "
                f"got {values.flatten().tolist()}: pass e.g. --data.{name} [0.5,0.5,0.5]"
            )


class CatDogDataModule(ClassificationDataModule):
    """Photos in one folder per class, for transfer learning (the lesson's cats and dogs, or any classes).

    ``data_dir`` holds either ``train/`` (and ``test/``, optionally ``val/``) with one folder per class, or
    simply one folder per class; missing validation and test sets are carved from the training images with
    a fixed ``seed``. Class names are the folder names, sorted.

    Args:
        data_dir: the image folder.
        batch_size: images per batch.
        val_split: fraction of the training images held out for validation when there is no ``val/``.
        test_split: fraction held out for testing when there is no ``test/``.
        seed: seed of the carved splits and of the shuffling.
        num_workers: decoding processes.
        image_size: side of the square crop fed to the network (224 as in the lesson).
        augment: the lesson's random training transforms; off, training uses the evaluation transforms.
        mean: per-channel mean for normalisation; None takes ImageNet's (the CLI fills in the backbone's own).
        std: per-channel std, as ``mean``.
        skip_bad_files: check every image once at set-up and leave out unreadable ones with a warning,
            instead of stopping with an error naming the file.
        predict_path: an image file or folder for ``predict`` (default: the test split).
        max_pixels: the largest image decoded (checked in the file's header first, so a decompression bomb costs
            nothing); a larger one is a bad file.
        known_classes: the class names when ``data_dir`` is not at hand (a checkpoint's, so ``predict`` on one's own
            files needs no training photos); the folders decide wherever they exist.
        groups: the ``check.json`` that ``check`` wrote: each of its duplicate groups goes to one side of the carved
            split (the side of the member the seed's order meets first), so no copy of a picture is on two sides.
        exclude: a file of photos to leave out: one path a line, or a JSON list (paths from check.json, say).
    """

    runs_named_by_folder = True  # logs/<Model>-CatDog-<folder>: runs on different photos stay apart

    def __init__(
        self,
        data_dir: str = "data/cats_dogs",
        batch_size: int = 32,
        val_split: float = 0.2,
        test_split: float = 0.1,
        seed: int = 42,
        num_workers: int = 2,
        image_size: int = 224,
        augment: bool = True,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        skip_bad_files: bool = False,
        predict_path: str | None = None,
        max_pixels: int = MAX_PIXELS,
        known_classes: list[str] | None = None,
        groups: str | None = None,
        exclude: str | None = None,
    ) -> None:
        super().__init__(
            batch_size,
            val_split,
            seed,
            num_workers,
            mean or IMAGENET_MEAN,
            std or IMAGENET_STD,
            predict_path,
            max_pixels,
        )
        if not 0 <= test_split < 1 or val_split + test_split >= 1:
            raise DataError(f"test_split must be in [0, 1) with val_split + test_split < 1, got {test_split}")
        check_photo_settings(image_size, self.mean, self.std)
        hint = "remove it or pass --data.skip_bad_files true" if not skip_bad_files else "remove it"
        self.read = reader(max_pixels=max_pixels, hint=hint)
        self.save_hyperparameters()
        self.root = Path(data_dir)
        self.test_split = test_split
        self.image_size = image_size
        self.augment = augment
        self.skip_bad_files = skip_bad_files
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.train_images: ImageFileDataset | None = None  # the image sets, kept when features replace them
        self.val_images: ImageFileDataset | None = None
        self.test_images: ImageFileDataset | None = None
        self.test_set: Dataset | None = None
        self.cached_views = 0
        self.known_classes = list(known_classes) if known_classes else None
        self.groups, self.exclude = groups, exclude
        if self.root.is_dir():
            _ = self.class_names  # a folder that is there is checked at once; a missing one when first needed

    @property
    def train_root(self) -> Path:
        return self.root / "train" if (self.root / "train").is_dir() else self.root

    @cached_property
    def class_names(self) -> list[str]:
        """The class folders' names, sorted. A missing ``data_dir`` is an error here, not in ``__init__``: the
        preprocessing of a checkpoint's data (``Predictor``, ``export``) is rebuilt where the photos are not."""
        if not self.root.is_dir():
            if self.known_classes:
                return self.known_classes
            raise DataError(f"image folder {self.root} does not exist: pass --data.data_dir PATH")
        names = [p.name for p in class_folders(self.train_root) if p.name not in ("train", "val", "test")]
        if len(names) < 2:
            raise DataError(f"{self.train_root} needs one folder per class (at least two), found {names or 'none'}")
        return names

    # ---- splits --------------------------------------------------------------------------------------

    def _carve(self, files: list[Path]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Disjoint train/val/test indices into the training images, fixed by ``seed``; with ``groups``, each
        duplicate group on one side."""
        n = len(files)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        n_val = 0 if (self.root / "val").is_dir() else int(round(n * self.val_split))
        n_test = 0 if (self.root / "test").is_dir() else int(round(n * self.test_split))
        if not self.groups:
            return perm[n_val + n_test :], perm[:n_val], perm[n_val : n_val + n_test]
        sides = torch.zeros(n, dtype=torch.long)
        sides[perm[:n_val]], sides[perm[n_val : n_val + n_test]] = 1, 2
        keep_together(sides, perm, [str(f) for f in files], duplicate_groups(self.groups))
        return perm[sides[perm] == 0], perm[sides[perm] == 1], perm[sides[perm] == 2]

    def _without_excluded(self, files: list[Path], labels: list[int]) -> tuple[list[Path], list[int]]:
        if not self.exclude:
            return files, labels
        drop = excluded_names(self.exclude)
        kept = [(f, y) for f, y in zip(files, labels, strict=True) if canonical(str(f)) not in drop]
        return [f for f, _ in kept], [y for _, y in kept]

    def _checked(self, files: list[Path], labels: list[int]) -> tuple[list[Path], list[int]]:
        if not self.skip_bad_files:
            return files, labels
        keep, bad = [], []
        for f, y in zip(files, labels, strict=True):
            try:
                self.read(f)
                keep.append((f, y))
            except DataError:
                bad.append(f)
        if bad:
            warnings.warn(f"left out {len(bad)} unreadable image(s): {', '.join(map(str, bad[:5]))}", stacklevel=2)
        return [f for f, _ in keep], [y for _, y in keep]

    def split_files(self) -> dict[str, tuple[list[Path], list[int]]]:
        """Files and labels of each split."""
        files, labels = self._without_excluded(*self._checked(*list_images(self.train_root, self.class_names)))
        train_idx, val_idx, test_idx = self._carve(files)

        def pick(idx: torch.Tensor) -> tuple[list[Path], list[int]]:
            return [files[i] for i in idx.tolist()], [labels[i] for i in idx.tolist()]

        splits = {"train": pick(train_idx), "val": pick(val_idx), "test": pick(test_idx)}
        for name in ("val", "test"):
            if (self.root / name).is_dir():
                extra = sorted({p.name for p in class_folders(self.root / name)} - set(self.class_names))
                if extra:
                    raise DataError(
                        f"{self.root / name} has class folder(s) {', '.join(extra)} that {self.train_root} lacks: "
                        "add training images for them or remove them"
                    )
                splits[name] = self._without_excluded(*self._checked(*list_images(self.root / name, self.class_names)))
        counts = torch.bincount(torch.tensor(splits["train"][1], dtype=torch.long), minlength=len(self.class_names))
        few = [f"{name} ({int(n)})" for name, n in zip(self.class_names, counts, strict=True) if n < 2]
        if few:
            warnings.warn(f"classes with fewer than 2 training images: {', '.join(few)}; add more", stacklevel=2)
        return splits

    def inventory(self) -> Inventory:
        """Every photo of every split as ``fit`` splits them, read whole by the datamodule's reader."""
        splits = self.split_files()
        files = [file for name in ("train", "val", "test") for file in splits[name][0]]
        labels = [label for name in ("train", "val", "test") for label in splits[name][1]]
        names = [name for name in ("train", "val", "test") for _ in splits[name][0]]
        return Inventory(
            [str(f) for f in files],
            torch.tensor(labels, dtype=torch.long),
            names,
            ImageFileDataset(files, labels, torch.nn.Identity(), self.read),
        )

    def setup(self, stage: str) -> None:
        self.follow_model()
        if stage == "predict" and self.predict_path:
            return  # the user's own files: the training photos are not needed
        if self.test_images is not None:  # all splits are made together, once
            return
        splits = self.split_files()
        train_tf = train_transform(self.image_size) if self.augment else eval_transform(self.image_size)
        eval_tf = eval_transform(self.image_size)
        self.train_set = self.train_images = ImageFileDataset(*splits["train"], train_tf, self.read)
        self.val_set = self.val_images = ImageFileDataset(*splits["val"], eval_tf, self.read)
        self.test_set = self.test_images = ImageFileDataset(*splits["test"], eval_tf, self.read)

    # ---- features of a frozen backbone, computed once -----------------------------------------------------

    def feature_inputs(self, split: str, views: int = 1) -> tuple[ImageFileDataset, torch.Tensor, str]:
        """What a feature pass over ``split`` (train, val or test) reads: the images (uint8, normalised later by
        :meth:`normalize`), their labels repeated ``views`` times, and a description of both for a cache key:
        each file's path and a digest of its bytes (a size and a date can be put back), the labels, the transform
        and the normalisation.

        ``views`` = 1 takes the evaluation transform (training included, no augmentation); ``views`` = K > 1
        takes K augmented views of each training image, drawn anew on each pass.
        """
        if self.test_images is None:
            self.setup("fit")
        images = {"train": self.train_images, "val": self.val_images, "test": self.test_images}[split]
        augmented = split == "train" and views > 1
        transform = train_transform(self.image_size) if augmented else eval_transform(self.image_size)
        dataset = ImageFileDataset(images.files, images.labels.tolist(), transform, self.read)
        identity = json.dumps(
            {
                "files": [[str(path.resolve()), content_digest(path)] for path in images.files],
                "labels": images.labels.tolist(),
                "transform": repr(transform),
                "mean": self.mean.flatten().tolist(),
                "std": self.std.flatten().tolist(),
                "views": views if augmented else 1,
            }
        )
        return dataset, images.labels.repeat(views if augmented else 1), identity

    def use_features(self, split: str, features: torch.Tensor, labels: torch.Tensor, views: int = 1) -> None:
        """Train, validate or test on ``features`` (N, F) instead of the images of ``split`` from now on."""
        setattr(self, f"{split}_set", TensorBatchDataset(features, labels))
        if split == "train":
            self.cached_views = views

    # ---- loaders ------------------------------------------------------------------------------------------

    def _loader(self, split: str, shuffle: bool) -> DataLoader | DeviceBatches:
        dataset = getattr(self, f"{split}_set")
        if isinstance(dataset, TensorBatchDataset):  # features: kept on the device, loaded in large batches
            return self.resident_loader(split, dataset, shuffle, views=max(1, self.cached_views) if shuffle else 1)
        return self.make_loader(dataset, shuffle)

    def train_dataloader(self) -> DataLoader | DeviceBatches:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | DeviceBatches:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader | DeviceBatches:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """The files under ``predict_path``, or the test photos (never their features: pictures show them)."""
        if self.predict_path:
            return super().predict_dataloader()
        self.predict_files = []
        if self.test_images is None:
            self.setup("predict")
        return self.make_loader(self.test_images, shuffle=False)

    def predict_transform(self) -> Callable[[torch.Tensor], torch.Tensor]:
        return eval_transform(self.image_size)

    def test_samples(self, indices: Sequence[int]) -> tuple[torch.Tensor, list[str]]:
        """Test photos by position, centre-cropped as the model sees them, and their files."""
        if self.test_images is None:
            self.setup("test")
        images = torch.stack([self.test_images[i][0] for i in indices])
        return images, [str(self.test_images.files[i]) for i in indices]

    def sample_images(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.val_images is None:
            self.setup("fit")
        dataset = self.val_images if len(self.val_images) else self.test_images
        items = [dataset[i] for i in range(min(n, len(dataset)))]
        return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])
