"""The idx datamodules: torchvision reads the files, batches are tensor indexing, the split is fixed."""

import pytest
import torch

from datamodules import DataError, FashionMNISTDataModule, MNISTDataModule
from datamodules.tensor_dataset import EpochShuffleSampler


def make(idx_root, cls=MNISTDataModule, **kwargs):
    dm = cls(data_dir=str(idx_root), **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_split_is_disjoint_complete_and_repeatable(idx_root):
    dm = make(idx_root, val_split=0.25, seed=3)
    train, val = dm.split_indices(600)
    assert len(val) == 150 and len(train) == 450
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(600))
    again, _ = make(idx_root, val_split=0.25, seed=3).split_indices(600)
    other, _ = make(idx_root, val_split=0.25, seed=4).split_indices(600)
    assert torch.equal(train, again) and not torch.equal(train, other)
    assert len(dm.train_set) == 450 and len(dm.val_set) == 150


def test_batches_are_uint8_indexed_then_normalised(idx_root):
    """Off the device (``on_device: false``), batches travel as bytes and are normalised where they land."""
    dm = make(idx_root, batch_size=32, on_device=False)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 1, 28, 28) and x.dtype == torch.uint8 and y.dtype == torch.long
    x_norm, y_after = dm.on_after_batch_transfer((x, y), 0)
    assert x_norm.dtype == torch.float32 and torch.equal(y_after, y)
    # the lesson's ToTensor + Normalize((0.5,), (0.5,)) maps 0..255 to -1..1
    assert torch.allclose(x_norm, (x.float() / 255 - 0.5) / 0.5)
    assert x_norm.min() >= -1 and x_norm.max() <= 1


def test_test_set_is_the_official_one(idx_root):
    dm = MNISTDataModule(data_dir=str(idx_root))
    dm.setup("test")
    assert len(dm.test_set) == 200
    xs = torch.cat([x for x, _ in dm.test_dataloader()])
    assert xs.shape == (200, 1, 28, 28)


def test_class_names(idx_root):
    assert MNISTDataModule().class_names == [str(i) for i in range(10)]
    names = FashionMNISTDataModule().class_names
    assert names[0] == "T-shirt/top" and names[9] == "Ankle boot" and len(names) == 10


def test_shuffle_depends_on_seed_and_epoch_only():
    data = list(range(100))
    a, b = EpochShuffleSampler(data, seed=1), EpochShuffleSampler(data, seed=1)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first and sorted(a) == data
    b.set_epoch(1)
    assert list(a) == list(b)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"batch_size": 0}, "batch_size"), ({"val_split": 1.0}, "val_split"), ({"val_split": -0.1}, "val_split")],
)
def test_impossible_values_are_refused(kwargs, message):
    with pytest.raises(DataError, match=message):
        MNISTDataModule(**kwargs)


def test_missing_files_without_download_name_the_files(tmp_path):
    dm = MNISTDataModule(data_dir=str(tmp_path), download=False)
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        dm.setup("fit")
