"""``predict`` output: a CSV of class probabilities per file, and ``view_classify`` pictures."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter

from lightning_app import figures
from lightning_app.runs.run_folders import RUNS, run_dir
from lightning_app.runs.storage import location, write_csv


class PredictionWriter(BasePredictionWriter):
    """Writes ``<run>/predictions/predictions.csv`` (file, predicted class, one probability column per class)
    and PNGs: one ``view_classify`` figure per image for up to ``per_image`` images, else grids of 16 for the
    first ``grid_images``."""

    fast_path_safe = True  # acts per epoch, or reads loaded batches as they are (contracts.FastPathSafe)

    def __init__(self, per_image: int = 16, grid_images: int = 64) -> None:
        super().__init__(write_interval="epoch")
        self.per_image = per_image
        self.grid_images = grid_images

    def write_on_epoch_end(self, trainer: Trainer, pl_module: LightningModule, predictions, batch_indices) -> None:
        batches = predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        indices = batch_indices[0] if batch_indices and isinstance(batch_indices[0], list) else batch_indices
        probs = torch.cat([p.float().cpu() for p in batches]) if batches else torch.empty(0)
        order = [i for batch in indices for i in batch] if indices else list(range(len(probs)))
        order, probs = self._gather(trainer, order, probs)
        if not trainer.is_global_zero or not order:
            return
        folder = (run_dir(trainer) or location(RUNS)) / "predictions"
        folder.mkdir(parents=True, exist_ok=True)
        files = list(getattr(trainer.datamodule, "predict_files", []) or [])
        names = [str(files[i]) if files else f"test[{i}]" for i in order]
        class_names = list(pl_module.class_names)
        csv_path = folder / "predictions.csv"
        rows = [
            [name, class_names[int(row.argmax())], *[f"{p:.6f}" for p in row.tolist()]]
            for name, row in zip(names, probs, strict=True)
        ]
        write_csv(csv_path, ["file", "predicted", *[f"p_{c}" for c in class_names]], rows)
        dataset = trainer.predict_dataloaders.dataset
        pictures = self._pictures(dataset, order, probs, names, class_names, folder)
        print(f"predictions: {csv_path} ({len(names)} rows)\npictures: {pictures} PNG file(s) in {folder}", flush=True)

    @staticmethod
    def _gather(trainer: Trainer, order: list[int], probs: torch.Tensor) -> tuple[list[int], torch.Tensor]:
        """Under DDP each process predicted its own share: bring them together, in dataset order."""
        if trainer.world_size == 1 or not torch.distributed.is_initialized():
            return order, probs
        shares: list = [None] * trainer.world_size
        torch.distributed.all_gather_object(shares, (order, probs))
        merged = {}
        for share_order, share_probs in shares:
            merged.update(zip(share_order, share_probs, strict=True))
        order = sorted(merged)
        return order, torch.stack([merged[i] for i in order]) if order else torch.empty(0)

    def _pictures(self, dataset, order, probs, names, class_names, folder: Path) -> int:
        def item(k: int) -> tuple[torch.Tensor, int]:
            image, label = dataset[order[k]]
            return image, int(label)

        if len(order) <= self.per_image:
            for k in range(len(order)):
                image, label = item(k)
                fig = figures.view_classify(image, probs[k].numpy(), class_names, label, title=Path(names[k]).name)
                figures.save(fig, folder / f"{k:04d}_{short(Path(names[k]).stem)}.png")
            return len(order)
        count = 0
        for start in range(0, min(len(order), self.grid_images), 16):
            ks = range(start, min(start + 16, len(order), self.grid_images))
            items = [item(k) for k in ks]
            images = torch.stack([image for image, _ in items])
            labels = torch.tensor([label for _, label in items])
            titles = [Path(names[k]).name for k in ks]
            fig = figures.prediction_grid(images, probs[list(ks)], class_names, labels, titles)
            figures.save(fig, folder / f"grid_{start // 16:03d}.png")
            count += 1
        return count


def short(stem: str, limit: int = 150) -> str:
    """``stem`` cut to ``limit`` bytes of UTF-8 (whole characters): file names end at 255 bytes."""
    return stem.encode()[:limit].decode(errors="ignore")
