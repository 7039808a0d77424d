"""How the image-folder path behaves with many files, measured on generated photos (README "At scale").

    python benchmarks/at_scale.py --files 50000 --root /tmp/at_scale

Writes ``--files`` small JPEGs (64x64, two classes) once, then measures, each in this process:
listing them, the datamodule's set-up (splits), the feature cache's key (a stat of every file), the memory those
take, and the decode + evaluation transform of a sample of the photos (one process, as one DataLoader worker
would), from which an epoch over all of them is extrapolated. It prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datamodules import CatDogDataModule  # noqa: E402
from datamodules.image_io import list_image_files  # noqa: E402
from modules.backbones import BACKBONES  # noqa: E402


def write_photos(root: Path, files: int) -> float:
    """Two class folders of 64x64 JPEGs (about 1-2 KB each); returns the seconds taken (0 when they exist)."""
    marker = root / f".complete-{files}"
    if marker.exists():
        return 0.0
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    for i in range(files):
        folder = root / ("cat" if i % 2 else "dog")
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
        Image.fromarray(pixels).save(folder / f"{i:07d}.jpg", quality=85)
    marker.touch()
    return time.perf_counter() - start


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--root", type=Path, default=Path("/tmp/at_scale"))
    parser.add_argument("--decode-sample", type=int, default=2_000)
    args = parser.parse_args()
    result: dict[str, float | int | str] = {
        "files": args.files,
        "write_s": round(write_photos(args.root, args.files), 1),
    }
    result["bytes_on_disk"] = sum(p.stat().st_size for p in args.root.rglob("*.jpg"))

    before = rss_mb()
    start = time.perf_counter()
    files = list_image_files(args.root)
    result["list_s"] = round(time.perf_counter() - start, 2)
    assert len(files) == args.files

    start = time.perf_counter()
    data = CatDogDataModule(data_dir=str(args.root), num_workers=0, batch_size=32)
    data.setup("fit")
    result["setup_s"] = round(time.perf_counter() - start, 2)

    start = time.perf_counter()
    for split in ("train", "val", "test"):
        _, _, identity = data.feature_inputs(split)
    result["cache_key_s"] = round(time.perf_counter() - start, 2)
    result["cache_key_bytes_per_file"] = round(len(identity) / len(data.test_images), 1)
    result["rss_growth_mb"] = round(rss_mb() - before, 1)

    sample = data.train_images
    n = min(args.decode_sample, len(sample))
    start = time.perf_counter()
    for i in range(n):
        sample[i]
    per_photo = (time.perf_counter() - start) / n
    result["decode_transform_ms_per_photo"] = round(per_photo * 1000, 3)
    result["epoch_read_s_one_worker_extrapolated"] = round(per_photo * len(sample), 1)
    result["feature_bytes_per_photo"] = {name: spec.features * 4 for name, spec in BACKBONES.items()}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
