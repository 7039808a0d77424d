"""The transfer model's feature pass on a GPU, side by side: the backbone alone, then the whole pass (reading,
decoding, resizing, the backbone) with JPEGs decoded on the device by nvJPEG and with the CPU reader in loader
workers. Photos a second of each, EfficientNet-Lite0 in bf16.

    python benchmarks/gpu_feature_pass.py --photos ../shared/datasets/cats_dogs/train --workers 8
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from lightning.pytorch import Trainer

from datamodules import CatDogDataModule
from lightning_app.engine.feature_cache import FeatureCache
from lightning_app.engine.inference_backbone import inference_copy
from modules import TransferModel
from modules.backbones import get_backbone


def backbone_alone(model: TransferModel, batch: int, seconds: float = 5.0) -> float:
    """Images a second through the pass's own copy of the backbone, on random inputs already on the GPU."""
    x = torch.randn(batch, 3, 224, 224, device="cuda")
    copy = inference_copy(model.backbone.cuda().eval(), x[:1])
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        for _ in range(3):
            copy(x.contiguous(memory_format=torch.channels_last))
        torch.cuda.synchronize()
        start, done = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            copy(x.contiguous(memory_format=torch.channels_last))
            done += batch
        torch.cuda.synchronize()
    return done / (time.perf_counter() - start)


def feature_pass(photos: Path, on_device: bool, workers: int, batch: int) -> tuple[float, int]:
    """(photos a second, photos) of FeatureCache's pass over every split, in one epoch of the head."""
    spec = get_backbone("efficientnet_lite0")
    data = CatDogDataModule(data_dir=str(photos), num_workers=workers, mean=list(spec.mean), std=list(spec.std))
    cache = FeatureCache(batch_size=batch, on_disk=False, decode_on_device=on_device)
    with tempfile.TemporaryDirectory() as root:
        trainer = Trainer(
            accelerator="gpu",
            devices=1,
            max_epochs=1,
            precision="bf16-mixed",
            callbacks=[cache],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            default_root_dir=root,
        )
        model = TransferModel(backbone="efficientnet_lite0", num_classes=len(data.class_names))
        trainer.fit(model, datamodule=data)
    return cache.photos_run / cache.pass_seconds, cache.photos_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    model = TransferModel(backbone="efficientnet_lite0", num_classes=2)
    print(f"| backbone alone, batch {args.batch} | {backbone_alone(model, args.batch):.0f} images/s |", flush=True)
    for on_device in (True, False, True):
        rate, count = feature_pass(args.photos, on_device, args.workers, args.batch)
        where = "nvJPEG on the GPU" if on_device else f"the CPU reader, {args.workers} workers"
        print(f"| feature pass, {where} | {rate:.0f} photos/s ({count} photos) |", flush=True)


if __name__ == "__main__":
    main()
