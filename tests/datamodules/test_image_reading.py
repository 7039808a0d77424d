"""Images are read as a photo viewer shows them, whatever the file holds; odd folders are refused or read once."""

import os
import time
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from datamodules import DataError
from datamodules.image_io import ImageFileDataset, list_image_files, read_rgb
from tests.helpers.data import photo_module


def solid(mode: str, size: tuple[int, int], color) -> Image.Image:
    return Image.new(mode, size, color)


def test_exif_orientation_is_applied(tmp_path):
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :20] = (255, 0, 0)  # stored: red on the left half of a wide image
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view", as phones write
    Image.fromarray(image).save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    shown = read_rgb(tmp_path / "phone.jpg")
    assert shown.shape == (3, 40, 20)  # tall, as a viewer shows it
    assert shown[0, :10].float().mean() > 200 and shown[0, -10:].float().mean() < 50  # red now on top


def test_transparency_is_blended_onto_white(tmp_path):
    solid("RGBA", (8, 8), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    solid("RGBA", (8, 8), (255, 0, 0, 128)).save(tmp_path / "half.png")
    solid("LA", (8, 8), (0, 0)).save(tmp_path / "grey_clear.png")
    palette = solid("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.save(tmp_path / "palette_clear.png", transparency=1)
    assert (read_rgb(tmp_path / "clear.png") == 255).all()
    assert read_rgb(tmp_path / "half.png")[:, 0, 0].tolist() == [255, 127, 127]
    assert (read_rgb(tmp_path / "grey_clear.png") == 255).all()
    assert (read_rgb(tmp_path / "palette_clear.png") == 255).all()


def test_16_bit_and_cmyk_and_animated_images(tmp_path):
    Image.fromarray(np.full((6, 5), 65535, np.uint16)).save(tmp_path / "white16.png")
    Image.fromarray(np.full((6, 5), 32896, np.uint16)).save(tmp_path / "mid16.png")
    solid("CMYK", (5, 6), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    frames = [solid("RGB", (5, 6), (255, 0, 0)), solid("RGB", (5, 6), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    frames[0].save(tmp_path / "anim.webp", save_all=True, append_images=frames[1:], duration=100, lossless=True)
    assert (read_rgb(tmp_path / "white16.png") == 255).all()
    assert (read_rgb(tmp_path / "mid16.png") == 128).all()
    cmyk = read_rgb(tmp_path / "cmyk.jpg")
    assert cmyk[0].float().mean() > 200 and cmyk[1:].float().mean() < 50  # red
    for name in ("anim.gif", "anim.webp"):
        first = read_rgb(tmp_path / name)
        assert first.shape == (3, 6, 5) and first[0].float().mean() > 200 and first[2].float().mean() < 50


def test_a_mixed_batch_of_8_and_16_bit_images_stacks(tmp_path):
    Image.fromarray(np.full((6, 5), 40000, np.uint16)).save(tmp_path / "a16.png")
    solid("RGB", (5, 6), (10, 20, 30)).save(tmp_path / "b8.jpg")
    solid("RGBA", (5, 6), (10, 20, 30, 255)).save(tmp_path / "c8.png")
    files = list_image_files(tmp_path)
    batch, _ = next(iter(DataLoader(ImageFileDataset(files, [0, 1, 0], lambda x: x), batch_size=3)))
    assert batch.dtype == torch.uint8 and batch.shape == (3, 3, 6, 5)


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path):
    Image.new("1", (20000, 20000)).save(tmp_path / "bomb.png")  # about 50 KB on disk, 1.2 GB as RGB
    assert (tmp_path / "bomb.png").stat().st_size < 1_000_000
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"bomb.png has over 178,956,970 pixels, more than PIL opens"):
        read_rgb(tmp_path / "bomb.png")  # PIL's own guard, as the process has it (the app never changes it)

    assert time.perf_counter() - start < 1.0
    solid("RGB", (300, 200), (0, 0, 0)).save(tmp_path / "big.jpg")
    with pytest.raises(DataError, match="over the limit of 50,000: shrink it, or raise --data.max_pixels"):
        read_rgb(tmp_path / "big.jpg", max_pixels=50_000)


def test_pils_guard_is_the_processs_own_and_the_apps_limit_decides_below_it(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # as a user's script may set it: a warning above, an error
    solid("RGB", (40, 30), (0, 0, 0)).save(tmp_path / "warned.png")  # above twice
    solid("RGB", (50, 50), (0, 0, 0)).save(tmp_path / "refused.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's warning is not the app's: max_pixels decides
        assert read_rgb(tmp_path / "warned.png").shape == (3, 30, 40)
    with pytest.raises(DataError, match=r"warned.png has 40x30 pixels, over the limit of 1,100: shrink"):
        read_rgb(tmp_path / "warned.png", max_pixels=1100)
    with pytest.raises(DataError, match=r"refused.png has over 2,000 pixels, more than PIL opens"):
        read_rgb(tmp_path / "refused.png", max_pixels=10**9)
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_the_pixel_limit_is_a_datamodule_setting(photo_root):
    dm = photo_module(photo_root, max_pixels=100)  # the test photos are 48x40
    dm.setup("fit")
    with pytest.raises(DataError, match="over the limit of 100: .*--data.skip_bad_files true"):
        next(iter(dm.train_dataloader()))
    with pytest.raises(DataError, match="max_pixels must be a positive integer"):
        photo_module(photo_root, max_pixels=0)


def test_a_class_folder_linking_to_its_parent_is_refused(photo_root):
    os.symlink(photo_root, photo_root / "loop")
    with pytest.raises(DataError, match="class folder .*loop links to .*which holds the data set: remove the link"):
        photo_module(photo_root)


def test_two_class_folders_linking_to_one_folder_are_refused(photo_root):
    os.symlink(photo_root / "cat", photo_root / "kitten")
    with pytest.raises(DataError, match="'cat' and 'kitten' share images"):
        photo_module(photo_root)


def test_links_inside_a_class_folder_are_followed_once(photo_root):
    before = list_image_files(photo_root / "cat")
    os.symlink(photo_root / "cat", photo_root / "cat" / "again")  # a loop
    (photo_root / "cat" / "alias.jpg").symlink_to(before[0])  # the same file twice
    assert list_image_files(photo_root / "cat") == before


def test_a_class_only_in_test_is_refused_and_a_tiny_class_is_warned_about(tmp_path):
    from tests.helpers.data import write_photo_folder

    write_photo_folder(tmp_path / "train", {"cat": (200, 60, 60), "dog": (60, 60, 200)}, per_class=6)
    write_photo_folder(tmp_path / "test", {"cat": (200, 60, 60), "dog": (60, 60, 200), "bird": (0, 200, 0)}, 2)
    with pytest.raises(DataError, match="has class folder.s. bird that .*train lacks"):
        photo_module(tmp_path, val_split=0.2).split_files()
    flat = write_photo_folder(tmp_path / "flat", {"cat": (200, 60, 60), "dog": (60, 60, 200)}, per_class=6)
    for extra in sorted((flat / "dog").iterdir())[1:]:
        extra.unlink()
    with pytest.warns(UserWarning, match=r"fewer than 2 training images: dog \(\d\)"):
        photo_module(flat, val_split=0.2, test_split=0.2).split_files()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        photo_module(tmp_path / "train", val_split=0.2).split_files()


@pytest.mark.parametrize("size", [0, -3, 60000])
def test_a_useless_image_size_is_one_line(photo_root, size):
    with pytest.raises(DataError, match=f"image_size must be 8 to 1024 pixels, got {size}"):
        photo_module(photo_root, image_size=size)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            {"std": [0.0, 0.0, 0.0]},
            r"std must be 3 finite numbers \(red, green, blue\), above 0, got \[0.0, 0",
        ),
        ({"mean": [0.5]}, r"mean must be 3 finite numbers \(red, green, blue\), got \[0.5\]"),
        ({"std": [0.2, float("nan"), 0.2]}, "std must be 3 finite numbers"),
    ],
)
def test_a_normalisation_that_is_not_three_usable_numbers_is_one_line(photo_root, setting, message):
    with pytest.raises(DataError, match=message):
        photo_module(photo_root, **setting)


def test_a_thin_strip_is_refused_before_it_is_resized(tmp_path, photo_root):
    Image.new("L", (20000, 1)).save(tmp_path / "strip.png")  # about 100 bytes; Resize(255) alone made it 1.3 GB
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"strip.png is 20000x1 pixels, longer than 20 times its width or height: crop"):
        read_rgb(tmp_path / "strip.png")
    assert time.perf_counter() - start < 1.0
    Image.new("RGB", (5, 100)).save(photo_root / "cat" / "tall_strip.png")  # 20:1 is read
    assert read_rgb(photo_root / "cat" / "tall_strip.png").shape == (3, 100, 5)
    Image.new("RGB", (5, 101)).save(photo_root / "dog" / "too_tall.png")
    with pytest.warns(UserWarning, match=r"left out 1 unreadable image\(s\): .*too_tall.png"):
        dm = photo_module(photo_root, skip_bad_files=True)
        dm.setup("fit")


def test_what_the_evaluation_transform_makes_is_bounded_whatever_it_is_given():
    from datamodules.image_folder import eval_transform

    transform = eval_transform(224)
    resize = transform.transforms[0]
    assert resize(torch.zeros(3, 2, 2000, dtype=torch.uint8)).shape == (3, 5, 5101)  # the long side capped
    assert transform(torch.zeros(3, 12, 240, dtype=torch.uint8)).shape == (3, 224, 224)  # 20:1 as the lesson's
    assert resize(torch.zeros(3, 12, 240, dtype=torch.uint8)).shape == (3, 255, 5100)
