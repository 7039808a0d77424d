"""Reading any photo as uint8 RGB: torchvision.io's decoders first, PIL for what they do not handle."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms.v2.functional import pil_to_tensor

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
