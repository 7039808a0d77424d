"""The feature pass's device decoding, run on the CPU here (the same code decodes with nvJPEG on a GPU:
tests/e2e/test_gpu.py): the reader's pixels, photo for photo, and the reader for what nvJPEG should not take."""

import pytest
import torch
from PIL import Image
from torch.utils.data import Subset

from datamodules.image_folder import eval_transform
from datamodules.image_io import ImageFileDataset, list_image_files, reader
from lightning_app.engine.device_decoding import RawPhotos, device_batches
from tests.helpers.data import CATS_DOGS, write_photo_folder


@pytest.fixture
def mixed_photos(tmp_path):
    """JPEGs (RGB, grey), PNGs (RGBA, palette), a CMYK JPEG and a JPEG with an EXIF rotation."""
    root = write_photo_folder(tmp_path / "photos", CATS_DOGS, per_class=6)
    base = Image.open(next(root.glob("cat/*.jpg"))).convert("RGB")
    base.convert("CMYK").save(root / "cat" / "cmyk.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    base.save(root / "dog" / "rotated.jpg", exif=exif.tobytes())
    return root


def photos(root, size=32):
    files = list_image_files(root)
    return ImageFileDataset(files, [0] * len(files), eval_transform(size), reader())


def test_device_decoding_gives_the_readers_pixels(mixed_photos):
    images = photos(mixed_photos)
    expected = torch.stack([images[i][0] for i in range(len(images))])
    got = torch.cat(list(device_batches(images, 4, torch.device("cpu"), num_workers=0)))
    assert got.shape == expected.shape and got.dtype == torch.uint8
    assert (got.int() - expected.int()).abs().max() <= 1  # two JPEG decoders' rounding at most


def test_only_plain_jpegs_go_to_the_device(mixed_photos):
    raw = RawPhotos(list_image_files(mixed_photos), reader(), 10**8)
    kinds = {path.name: raw[i][0] for i, path in enumerate(raw.files)}
    assert kinds["cmyk.jpg"] == kinds["rotated.jpg"] == "pixels"
    assert {kinds[name] for name in kinds if name.endswith(".png")} == {"pixels"}
    assert {kinds[name] for name in ("cat0.jpg", "cat2.jpg", "dog1.jpg")} == {"jpeg"}  # RGB and grey JPEGs


def test_a_share_decodes_its_own_photos(mixed_photos):
    images = photos(mixed_photos)
    share = Subset(images, range(1, len(images), 2))
    got = torch.cat(list(device_batches(share, 3, torch.device("cpu"), num_workers=0)))
    expected = torch.stack([images[i][0] for i in range(1, len(images), 2)])
    assert (got.int() - expected.int()).abs().max() <= 1


def test_a_file_over_the_pixel_limit_is_the_readers_one_line(mixed_photos):
    from datamodules import DataError

    files = list_image_files(mixed_photos)
    images = ImageFileDataset(files, [0] * len(files), eval_transform(32), reader(max_pixels=100))
    with pytest.raises(DataError, match="over the limit of 100"):
        list(device_batches(images, 4, torch.device("cpu"), num_workers=0))


def test_images_that_are_not_files_are_left_to_their_loader():
    assert device_batches([torch.zeros(3, 8, 8)], 4, torch.device("cpu"), num_workers=0) is None
