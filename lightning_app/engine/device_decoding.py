"""The feature pass's photos decoded on the GPU: JPEGs in batches by nvJPEG, then resized and cropped there.

On a GPU the frozen backbone runs far faster than a CPU decodes and resizes photos for it (docs/scale.md has the
figures), so where CUDA is present the feature pass hands decoding to the device: loader workers read each
file's bytes and check its header (the reader's bounds on size and shape), the main process decodes a batch of
JPEGs at once with torchvision's ``decode_jpeg(device="cuda")``, and the split's own transform resizes and crops
the decoded tensors where they are. A file nvJPEG should not take (not a JPEG, CMYK, an EXIF rotation, which
nvJPEG does not apply) is read by the image folder's reader in the worker instead, as is any file in a batch
nvJPEG refuses: the same pixels either way, up to the decoders' rounding.

torchvision 0.29 deprecates its image decoders in favour of TorchCodec; this module is the one place that calls
``decode_jpeg``, so moving to TorchCodec's CUDA decoder is a change here alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.io import ImageReadMode, decode_jpeg

from datamodules.image_io import MAX_PIXELS, ImageFileDataset, check_size

ORIENTATION = 0x0112  # the EXIF tag nvJPEG does not apply


def photo_files(images: Dataset) -> tuple[list[Path], Callable, Callable, int] | None:
    """The files, transform, reader and pixel limit behind a feature pass's images (an ``ImageFileDataset``, or a
    ``Subset`` of one, a process's share), or None when they are not files (a stream). The limit is the reader's
    (``image_io.reader``), or the default where a reader does not say."""
    indices = None
    if isinstance(images, Subset):
        images, indices = images.dataset, list(images.indices)
    if not isinstance(images, ImageFileDataset):
        return None
    files = images.files if indices is None else [images.files[i] for i in indices]
    limit = getattr(images.reader, "keywords", {}).get("max_pixels", MAX_PIXELS)
    return files, images.transform, images.reader, limit


class RawPhotos(Dataset):
    """Each photo as its JPEG bytes for the device to decode, or, where nvJPEG should not take it, as the pixels
    the reader decodes on the CPU. Runs in the loader's workers."""

    def __init__(self, files: list[Path], reader: Callable[[Path], torch.Tensor], max_pixels: int) -> None:
        self.files, self.reader, self.max_pixels = files, reader, max_pixels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[str, torch.Tensor]:
        path = self.files[index]
        if self.device_decodable(path):
            return "jpeg", torch.frombuffer(bytearray(Path(path).read_bytes()), dtype=torch.uint8)
        return "pixels", self.reader(path)

    def device_decodable(self, path: Path) -> bool:
        """A baseline RGB or grey JPEG without rotation, within the reader's bounds (read from the header)."""
        try:
            with Image.open(path) as image:
                check_size(path, *image.size, self.max_pixels)
                return (
                    image.format == "JPEG" and image.mode in ("RGB", "L") and image.getexif().get(ORIENTATION, 1) == 1
                )
        except Exception:  # noqa: BLE001 - any doubt: the reader decides, and says what is wrong
            return False


def device_batches(
    images: Dataset, batch_size: int, device: torch.device, num_workers: int
) -> Iterator[torch.Tensor] | None:
    """Batches of transformed uint8 images (B, C, H, W) on ``device``, decoded there; None when ``images`` are
    not image files."""
    found = photo_files(images)
    if found is None:
        return None
    files, transform, reader, limit = found
    loader = DataLoader(
        RawPhotos(files, reader, limit), batch_size=batch_size, num_workers=num_workers, collate_fn=list
    )

    def batches() -> Iterator[torch.Tensor]:
        start = 0
        for batch in loader:
            yield _decoded(batch, files[start : start + len(batch)], transform, reader, device)
            start += len(batch)

    return batches()


def _decoded(batch: list, files: list[Path], transform: Callable, reader: Callable, device: torch.device):
    jpegs = [i for i, (kind, _) in enumerate(batch) if kind == "jpeg"]
    pixels: list[torch.Tensor | None] = [
        data.to(device, non_blocking=True) if kind == "pixels" else None for kind, data in batch
    ]
    if jpegs:
        try:
            decoded = _decode([batch[i][1] for i in jpegs], device)
        except RuntimeError:  # one bad file fails the batch: each on its own, the reader for those nvJPEG refuses
            decoded = [_decode_one(batch[i][1], files[i], reader, device) for i in jpegs]
        for i, image in zip(jpegs, decoded, strict=True):
            pixels[i] = image
    return torch.stack([transform(image) for image in pixels])


def _decode(raw: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision 0.29's deprecation of its decoders (see the docstring)
        return decode_jpeg(raw, mode=ImageReadMode.RGB, device=device)


def _decode_one(raw: torch.Tensor, path: Path, reader: Callable, device: torch.device) -> torch.Tensor:
    try:
        return _decode([raw], device)[0]
    except RuntimeError:
        return reader(path).to(device)
