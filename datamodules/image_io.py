"""Reading any image file as a photo viewer shows it, as uint8 RGB: the one reader of training, test and predict."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset
from torchvision.transforms.v2.functional import rgb_to_grayscale

from datamodules.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
MAX_PIXELS = 100_000_000
"""The default pixel limit: a 24-megapixel phone photo has 24 million; a 400 KB PNG of 20000x20000 would take 1.2 GB."""
MAX_ASPECT = 20
"""The longest side over the shortest that is read: a phone panorama is about 4:1. Past it, scaling the short side
to the network's size makes the long one huge (a 102-byte 1x20000 PNG would become 255x5,100,000 pixels)."""


def _open(path: str | Path, hint: str) -> Image.Image:
    """``Image.open`` under PIL's own guard, left as the process has it (``Image.MAX_IMAGE_PIXELS``: a warning
    above it, an error above twice it). PIL has no per-call limit, so the app's ``max_pixels`` is checked after
    this: PIL's warning is silenced here alone, as ``max_pixels`` decides below PIL's error, and PIL's error
    becomes the app's one line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(path)  # reads the header only
        except Image.DecompressionBombError as err:
            limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
            raise DataError(
                f"{path} has over {limit:,} pixels, more than PIL opens (its guard against decompression bombs): "
                f"shrink it; or {hint}"
            ) from err


def read_rgb(path: str | Path, max_pixels: int = MAX_PIXELS, hint: str = "remove or replace it") -> torch.Tensor:
    """The image at ``path`` as a (3, H, W) uint8 tensor, as a photo viewer shows it.

    EXIF orientation is applied, transparency is blended onto white, 16-bit and float images are scaled to 8 bits,
    grey, palette and CMYK become RGB, and an animation gives its first frame. The size is read from the header and
    an image over ``max_pixels`` is refused before anything is decoded (a decompression bomb). Any failure is a
    ``DataError`` naming the file and ending with ``hint``.
    """
    with _checked(path, max_pixels, hint) as image:
        return _to_rgb(image)


def check_header(path: str | Path, max_pixels: int = MAX_PIXELS, hint: str = "remove or replace it") -> None:
    """Refuse, from its header alone, an image ``read_rgb`` would refuse for its size: the check of a file that is
    stored now and decoded later (a stream's photo)."""
    with _checked(path, max_pixels, hint):
        pass


@contextlib.contextmanager
def _checked(path: str | Path, max_pixels: int, hint: str) -> Iterator[Image.Image]:
    """The image at ``path`` opened (its header read) and its size checked; any failure, while open too, is a
    ``DataError`` naming the file and ending with ``hint``."""
    try:
        with _open(path, hint) as image:
            check_size(path, *image.size, max_pixels, hint)
            yield image
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - malformed files make PIL raise many kinds (struct.error, KeyError, ...)
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise DataError(f"{path} is not a readable image ({reason}): {hint}") from err


def check_size(name: object, width: int, height: int, max_pixels: int = MAX_PIXELS, hint: str = "") -> None:
    """Refuse, before decoding, an image too large (``max_pixels``) or too thin (``MAX_ASPECT``) to transform in
    bounded memory: what it becomes after the resize is then at most ``MAX_ASPECT`` times the network's input."""
    hint = f"; or {hint}" if hint else ""
    if width * height > max_pixels:
        raise DataError(
            f"{name} has {width}x{height} pixels, over the limit of {max_pixels:,}: shrink it, "
            f"or raise --data.max_pixels if you trust it{hint}"
        )
    if min(width, height) < 1 or max(width, height) > MAX_ASPECT * min(width, height):
        raise DataError(
            f"{name} is {width}x{height} pixels, longer than {MAX_ASPECT} times its width or height: crop it{hint}"
        )


def _to_rgb(image: Image.Image) -> torch.Tensor:
    """Decode with PIL: torchvision 0.29.1's ``decode_image`` crashed the process (SIGSEGV after a libpng error)
    on a PNG with one changed byte in this project's fuzz tests, where PIL raises an error.

    An RGB image comes back as a (3, H, W) view of PIL's interleaved pixels, not a planar copy: the copy was
    a large share of reading a photo, and the evaluation transform runs faster on the view, with the same pixels
    out (docs/speed.md, "The engine's choices")."""
    image.seek(0)  # the first frame of an animation
    image.load()
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        scale = 257.0 if image.mode != "F" and values.max(initial=0) > 255 else 1.0
        grey = torch.from_numpy(np.clip(values / scale, 0, 255).round().astype(np.uint8))
        return grey.unsqueeze(0).expand(3, -1, -1).contiguous()
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)


def read_grey(path: str | Path, max_pixels: int = MAX_PIXELS, hint: str = "remove or replace it") -> torch.Tensor:
    """The image at ``path`` as a (1, H, W) uint8 tensor (any format ``read_rgb`` reads)."""
    return rgb_to_grayscale(read_rgb(path, max_pixels, hint))


def reader(
    grey: bool = False, max_pixels: int = MAX_PIXELS, hint: str = "remove or replace it"
) -> Callable[[Path], torch.Tensor]:
    """A picklable reader (for DataLoader workers) with a datamodule's pixel limit and its advice on bad files."""
    return partial(read_grey if grey else read_rgb, max_pixels=max_pixels, hint=hint)


def list_image_files(path: str | Path) -> list[Path]:
    """``path`` itself when it is an image file, else the image files under the folder, sorted.

    Symbolic links are followed once: a folder reached twice (a link to its parent, two links to one folder) and a
    file reached twice are listed once, so no image is counted twice or leaks between splits.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path} does not exist: pass an image file or a folder of images")
    files: dict[str, Path] = {}  # by real path; a file's own name wins over a link's
    seen_dirs: set[str] = set()
    for folder, dirs, names in os.walk(path, followlinks=True, onerror=_raise_unreadable):
        real = os.path.realpath(folder)
        if real in seen_dirs:
            dirs.clear()
            continue
        seen_dirs.add(real)
        dirs.sort(key=lambda name: (os.path.islink(os.path.join(folder, name)), name))
        for name in names:
            file = Path(folder) / name
            if file.suffix.lower() in IMAGE_SUFFIXES and file.is_file():
                real_file = os.path.realpath(file)
                if real_file not in files or (files[real_file].is_symlink() and not file.is_symlink()):
                    files[real_file] = file
    if not files:
        raise DataError(
            f"{path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}): add some or name another folder"
        )
    return sorted(files.values())


def _raise_unreadable(err: OSError) -> None:
    raise DataError(f"{err.filename} cannot be read ({err.strerror}): check its permissions") from err


class ImageFileDataset(Dataset):
    """(file, label) pairs read as uint8 tensors by ``reader`` and transformed on access."""

    def __init__(
        self,
        files: Sequence[Path],
        labels: Sequence[int] | torch.Tensor,
        transform: Callable[[torch.Tensor], torch.Tensor],
        reader: Callable[[Path], torch.Tensor] = read_rgb,
    ) -> None:
        self.files = list(files)
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.transform = transform
        self.reader = reader

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.reader(self.files[index])), self.labels[index]
