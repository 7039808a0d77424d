"""An exported model's input made from its metadata alone, with PIL and numpy: what a program outside this app
(and outside torch) does with the ONNX file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps


def input_from_metadata(file: Path, metadata: dict[str, str]) -> np.ndarray:
    """The (C, H, W) float32 input in [0, 1] for one image file, following ``metadata["preprocessing"]``."""
    spec = json.loads(metadata["preprocessing"])
    image = ImageOps.exif_transpose(Image.open(file)).convert("L" if spec["color"] == "grey" else "RGB")
    for step in spec["steps"]:
        if "resize" in step:
            image = image.resize(resized(image.size, step["resize"], step["max_size"]), Image.Resampling.BILINEAR)
        else:
            height, width = step["center_crop"]
            left, top = round((image.width - width) / 2), round((image.height - height) / 2)
            image = image.crop((left, top, left + width, top + height))
    array = np.asarray(image, dtype=np.float32) / 255
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def resized(size: tuple[int, int], target: int | list[int], max_size: int | None) -> tuple[int, int]:
    """PIL's (width, height) for a resize to ``[height, width]``, or of the shorter side to ``target``."""
    if isinstance(target, list):
        return target[1], target[0]
    width, height = size
    short, long = sorted((width, height))
    new_short, new_long = target, int(target * long / short)
    if max_size is not None and new_long > max_size:
        new_short, new_long = int(max_size * new_short / new_long), max_size
    return (new_short, new_long) if width <= height else (new_long, new_short)
