"""A dataset over tensors that hands out whole batches by indexing, without per-sample work."""

from __future__ import annotations

from collections.abc import Iterator, Sequence, Sized

import torch
from torch.utils.data import Dataset, RandomSampler


class TensorBatchDataset(Dataset):
    """Images (N, C, H, W), or features (N, F), and labels (N,) kept as tensors; a batch is one indexing.

    The DataLoader's fetcher calls ``__getitems__`` with the sampler's indices for a batch, so a batch of 64
    costs one gather instead of 64 ``__getitem__`` calls and a collate. Use it with :func:`keep_batch`
    as the ``collate_fn``.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.images[idx], self.labels[idx]


def keep_batch(batch):
    """``collate_fn`` for :class:`TensorBatchDataset`: the batch is already stacked."""
    return batch


class EpochShuffleSampler(RandomSampler):
    """A random order that depends only on ``seed`` and the epoch Lightning sets, so a resumed run sees the
    same batches as one that never stopped. Under DDP Lightning swaps it for a DistributedSampler (it is a
    RandomSampler), which is epoch-seeded in the same way.

    With ``views`` > 1 the dataset holds ``views`` copies of the data one after another (cached augmented
    views); epoch ``e`` visits every sample once, in view ``e % views``.
    """

    def __init__(self, data_source: Sized, seed: int = 0, views: int = 1) -> None:
        super().__init__(data_source)
        if views < 1 or len(data_source) % views:
            raise ValueError(f"{len(data_source)} items cannot hold {views} views")
        self.seed = seed
        self.views = views
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.data_source) // self.views

    def order(self) -> torch.Tensor:
        """This epoch's indices, as one tensor."""
        n = len(self)
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(n, generator=generator) + (self.epoch % self.views) * n

    def __iter__(self) -> Iterator[int]:
        yield from self.order().tolist()
