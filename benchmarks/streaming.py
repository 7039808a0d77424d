"""Photos from an image folder against the same photos from a LitData stream, side by side in one sitting.

Writes the folder as a stream with ``optimize`` (timed; the size of the chunks on disk against the photos'),
then reads one training epoch through each datamodule's loader with the same transforms, batch and workers,
alternating the two ``--repeats`` times: set-up seconds and photos a second.

    python benchmarks/streaming.py --photos ../shared/datasets/cats_dogs/train --workers 2
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path

from datamodules import CatDogDataModule, StreamingImageDataModule
from lightning_app.toolkit.optimize import optimize_images


def size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def epoch(make) -> tuple[float, float, int]:
    """(set-up seconds, photos a second, photos) of one pass over the training loader."""
    start = time.perf_counter()
    data = make()
    data.setup("fit")
    loader = data.train_dataloader()
    ready = time.perf_counter()
    count = sum(len(x) for x, _ in loader)
    rate = count / (time.perf_counter() - ready)
    del loader, data  # its worker processes end here, before the next loader forks its own
    gc.collect()
    return ready - start, rate, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        stream = Path(scratch) / "stream"
        start = time.perf_counter()
        optimize_images(data_dir=str(args.photos), output=str(stream), num_workers=args.workers)
        print(
            f"optimize: {time.perf_counter() - start:.1f} s; chunks {size_mb(stream):.1f} MB "
            f"({len(list(stream.rglob('*.bin')))} files) for photos of {size_mb(args.photos):.1f} MB"
        )
        settings = {"batch_size": args.batch_size, "num_workers": args.workers}
        makers = {
            "image folder": lambda: CatDogDataModule(data_dir=str(args.photos), **settings),
            "stream": lambda: StreamingImageDataModule(data_dir=str(stream), **settings),
        }
        results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in makers}
        for _ in range(args.repeats):
            for name, make in makers.items():
                results[name].append(epoch(make))
                setup, rate, count = results[name][-1]
                print(f"{name:12}: set-up {setup:.2f} s, {rate:.0f} photos/s ({count} photos)", flush=True)
    print(f"\nmedian of {args.repeats}, {args.workers} workers, batch {args.batch_size}, augmented 224x224 crops:")
    for name, rows in results.items():
        setup, rate = statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)
        print(f"| {name} | {setup:.2f} s | {rate:.0f} |")


if __name__ == "__main__":
    main()
