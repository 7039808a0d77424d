"""The image-folder datamodule: layouts, formats, splits, errors."""

import shutil

import pytest
import torch

from datamodules import CatDogDataModule, DataError
from datamodules.image_io import read_rgb
from tests.helpers.data import photo_module


def test_every_format_becomes_rgb(photo_root):
    for path in sorted(photo_root.rglob("*.*"))[:6]:
        image = read_rgb(path)
        assert image.dtype == torch.uint8 and image.shape == (3, 40, 48)


def test_flat_layout_carves_disjoint_val_and_test(photo_root):
    dm = photo_module(photo_root, val_split=0.25, test_split=0.25)
    splits = dm.split_files()
    names = {k: {p.name for p in v[0]} for k, v in splits.items()}
    assert len(names["train"]) == 12 and len(names["val"]) == 6 and len(names["test"]) == 6
    assert names["train"].isdisjoint(names["val"]) and names["val"].isdisjoint(names["test"])
    assert splits == photo_module(photo_root, val_split=0.25, test_split=0.25).split_files()
    assert dm.class_names == ["cat", "dog"] and dm.num_classes == 2


def test_the_carved_split_is_the_one_earlier_versions_made(photo_root):
    """Runs and checkpoints from earlier versions (no ``groups``) keep their split: 0.2.0's carve, by hand."""
    from datamodules.folder_layout import list_images

    dm = photo_module(photo_root)
    files, _ = list_images(dm.train_root, dm.class_names)
    perm = torch.randperm(len(files), generator=torch.Generator().manual_seed(42))
    n_val, n_test = round(len(files) * 0.2), round(len(files) * 0.1)
    expected = {"val": perm[:n_val], "test": perm[n_val : n_val + n_test], "train": perm[n_val + n_test :]}
    splits = dm.split_files()
    for name, idx in expected.items():
        assert splits[name][0] == [files[i] for i in idx.tolist()]


def test_train_test_layout_and_three_classes(tmp_path):
    from tests.helpers.data import write_photo_folder

    classes = {"bird": (50, 200, 50), "cat": (200, 60, 60), "dog": (60, 60, 200)}
    write_photo_folder(tmp_path / "train", classes, per_class=6)
    write_photo_folder(tmp_path / "test", classes, per_class=2)
    dm = photo_module(tmp_path, val_split=0.5)
    assert dm.class_names == ["bird", "cat", "dog"]
    splits = dm.split_files()
    assert len(splits["test"][0]) == 6 and all("test" in p.parts for p in splits["test"][0])
    assert len(splits["val"][0]) == 9 and len(splits["train"][0]) == 9


def test_batches_are_uint8_crops_normalised_on_device(photo_root):
    dm = photo_module(photo_root, mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.uint8 and y.dtype == torch.long
    normalised, _ = dm.on_after_batch_transfer((x, y), 0)
    assert torch.allclose(normalised, (x.float() / 255 - 0.5) / 0.25)


def test_broken_file_is_named_or_skipped(photo_root):
    from tests.helpers.data import write_photo

    bad = photo_root / "dog" / "zz_broken.jpg"
    write_photo(bad, "broken", (0, 0, 0))
    with pytest.raises(DataError, match="zz_broken.jpg is not a readable image"):
        read_rgb(bad)
    with pytest.warns(UserWarning, match="zz_broken.jpg"):
        files = photo_module(photo_root, skip_bad_files=True).split_files()
    assert bad not in [p for v in files.values() for p in v[0]]


def test_empty_class_folder_and_missing_folder(photo_root, tmp_path):
    shutil.rmtree(photo_root / "dog")
    (photo_root / "dog").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        photo_module(photo_root).split_files()
    with pytest.raises(DataError, match="does not exist"):
        _ = CatDogDataModule(data_dir=str(tmp_path / "nowhere")).class_names
