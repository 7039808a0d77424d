"""The transfer model's feature pass before and after, side by side on the same photos and split:

  before: the frozen backbone as built (NCHW float32), batches of 32, glibc's default allocator settings
          (what FeatureCache ran until 2026-11-28)
  after:  FeatureCache's PyTorch engine: a folded-BatchNorm channels_last copy (``engine/inference_backbone.py``),
          batches of 16, large blocks kept in the heap (lightning_app/engine/host_tuning.py)
  onnxruntime: FeatureCache's default on a CPU where onnxruntime is installed: the backbone exported to ONNX
          and run there (lightning_app/engine/onnx_features.py), batches of 16, the same heap setting

Each runs in its own process (the allocator setting is per process) over the train and test photos of the
CatDogDataModule split (seed 42), decoding with ``--workers`` processes. Reported: wall time, ms a photo, user
and system CPU seconds, and the held-out accuracy of the lesson's head trained on each set of features (same
seed, 5 epochs of Adam 0.003, batch 32), with the largest difference between the two sets of features.

    python benchmarks/feature_pass.py --photos ../shared/datasets/cats_dogs/train
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def one_pass(mode: str, photos: str, workers: int, out: str) -> None:
    """In a child process: features of the train and test photos, timed."""
    from datamodules import CatDogDataModule
    from lightning_app.engine.host_tuning import keep_large_allocations, skip_nvml_probe_without_driver
    from lightning_app.engine.inference_backbone import inference_copy
    from lightning_app.engine.onnx_features import onnxruntime_extractor
    from modules import TransferModel

    skip_nvml_probe_without_driver()
    if mode != "before":
        keep_large_allocations()
    torch.manual_seed(0)
    model = TransferModel(backbone="efficientnet_lite0", weights="imagenet").eval()
    dm = CatDogDataModule(data_dir=photos, num_workers=workers, mean=[0.5] * 3, std=[0.5] * 3)
    batch = 32 if mode == "before" else 16
    result, extract = {}, None
    start, usage = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    count = 0
    with torch.no_grad():
        for split in ("train", "test"):
            images, labels, _ = dm.feature_inputs(split)
            feats = []
            for x, _ in DataLoader(images, batch_size=batch, num_workers=workers):
                x = dm.normalize(x)
                if mode == "before":
                    feats.append(model.extract_features(x))
                elif mode == "onnxruntime":
                    extract = extract or onnxruntime_extractor(model.backbone, x[:1], torch.get_num_threads())
                    feats.append(extract(x))
                else:
                    extract = extract or inference_copy(model.backbone, x[:1])
                    feats.append(extract(x.contiguous(memory_format=torch.channels_last)))
                count += len(x)
            result[split] = (torch.cat(feats), labels)
    wall = time.perf_counter() - start
    end = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    torch.save(result, out)
    stats = {
        "wall_s": wall,
        "ms_per_photo": 1000 * wall / count,
        "photos": count,
        "user_s": end.ru_utime - usage.ru_utime + children.ru_utime,
        "sys_s": end.ru_stime - usage.ru_stime + children.ru_stime,
    }
    print(json.dumps(stats))


def head_accuracy(train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor]) -> float:
    """The lesson's head trained on ``train`` features, its accuracy on ``test``."""
    torch.manual_seed(0)
    head = nn.Sequential(nn.Linear(train[0].shape[1], 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 2))
    optimizer = torch.optim.Adam(head.parameters(), lr=0.003)
    x, y = train
    for _ in range(5):
        for idx in torch.randperm(len(x)).split(32):
            optimizer.zero_grad()
            nn.functional.cross_entropy(head(x[idx]), y[idx]).backward()
            optimizer.step()
    head.eval()
    with torch.no_grad():
        return float((head(test[0]).argmax(1) == test[1]).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", default=str(ROOT.parent / "shared" / "datasets" / "cats_dogs" / "train"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--modes", nargs="+", default=["before", "after", "onnxruntime"])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        one_pass(opts.child[0], opts.photos, opts.workers, opts.child[1])
        return
    if not Path(opts.photos).is_dir():
        print(f"skipping: {opts.photos} not found")
        return
    print(
        f"{time.strftime('%Y-%m-%d')}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"workers {opts.workers}, command: {' '.join(sys.argv)}"
    )
    print("| pass | photos | wall s | ms/photo | user s | system s | held-out accuracy |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    features = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in opts.modes:
            out = str(Path(tmp) / f"{mode}.pt")
            child = [sys.executable, __file__, "--photos", opts.photos, "--workers", str(opts.workers)]
            done = subprocess.run([*child, "--child", mode, out], capture_output=True, text=True, check=True)
            stats = json.loads(done.stdout.strip().splitlines()[-1])
            features[mode] = torch.load(out, weights_only=True)
            accuracy = head_accuracy(features[mode]["train"], features[mode]["test"])
            print(
                f"| {mode} | {stats['photos']} | {stats['wall_s']:.1f} | {stats['ms_per_photo']:.1f} | "
                f"{stats['user_s']:.0f} | {stats['sys_s']:.0f} | {accuracy:.4f} |"
            )
    for mode in [m for m in ("after", "onnxruntime") if m in features and "before" in features]:
        diff = max(float((features["before"][s][0] - features[mode][s][0]).abs().max()) for s in ("train", "test"))
        print(f"largest difference between before's and {mode}'s features: {diff:.2e}")


if __name__ == "__main__":
    main()
