"""Reading any photo as uint8 RGB: torchvision.io's decoders first, PIL for what they do not handle."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms.v2.functional import pil_to_tensor, rgb_to_grayscale

from datamodules.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def read_rgb(path: str | Path) -> torch.Tensor:
    """The image at ``path`` as a (3, H, W) uint8 tensor; grey, CMYK, palette and RGBA become RGB."""
    try:
        return decode_image(str(path), mode=ImageReadMode.RGB)
    except (RuntimeError, ValueError):
        pass  # a format or variant torchvision does not decode: let PIL try
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "P"):  # composite transparency on white, as viewers show it
                rgba = image.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image = Image.alpha_composite(background, rgba)
            return pil_to_tensor(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(
            f"{path} is not a readable image ({err}): remove it or pass --data.skip_bad_files true"
        ) from err


def read_grey(path: str | Path) -> torch.Tensor:
    """The image at ``path`` as a (1, H, W) uint8 tensor (any format ``read_rgb`` reads)."""
    return rgb_to_grayscale(read_rgb(path))


def list_image_files(path: str | Path) -> list[Path]:
    """``path`` itself when it is an image file, else the image files under the folder, sorted."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path} does not exist: pass an image file or a folder of images")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(
            f"{path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}): add some or name another folder"
        )
    return files


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
