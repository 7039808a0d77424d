"""What a trained model gets wrong, after ``test`` (``python -m lightning_app interpret --ckpt_path best``).

fastai's ``ClassificationInterpretation`` for this app: the highest-loss test images, the most-confused class
pairs and per-class precision, recall and F1 (torchmetrics), written to ``<run>/interpretation/`` and TensorBoard.
"""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torchmetrics.functional.classification import (
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from lightning_app import figures
from lightning_app.callbacks.tensorboard_views import tensorboard
from lightning_app.contracts import Inspectable
from lightning_app.errors import TrainingError
from lightning_app.runs.run_folders import run_dir
from lightning_app.runs.storage import write_csv


class Interpretation(Callback):
    """Collects each test sample's log-probabilities (``test_step``'s ``log_probs``; the test loader keeps
    the split's order) and, after the test epoch, writes:

    - ``top_losses.png`` and ``top_losses.csv``: the ``top_k`` test samples with the highest loss (image,
      predicted class, true class, probability of the prediction, loss);
    - ``confused_pairs.csv``: (true, predicted) class pairs by count, most confused first;
    - ``per_class.csv``: precision, recall, F1 and support of each class.

    The figures and tables go to TensorBoard too (IMAGES and TEXT tabs, ``interpret/``). It runs in one process:
    the samples must stay in the split's order to name them.
    """

    def __init__(self, top_k: int = 16, pairs: int = 10) -> None:
        if top_k < 0:
            raise TrainingError(f"top_k must be >= 0, got {top_k}")
        self.top_k = top_k
        self.pairs = pairs
        self._log_probs: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.world_size > 1:
            raise TrainingError("interpret runs in one process: pass --trainer.devices 1")
        self._log_probs, self._targets = [], []

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._log_probs.append(outputs["log_probs"].float())
        self._targets.append(batch[1])

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._log_probs:
            return
        log_probs = torch.cat(self._log_probs).cpu()
        targets = torch.cat(self._targets).cpu()
        self._log_probs, self._targets = [], []
        names = list(pl_module.class_names)
        folder = (run_dir(trainer) or Path("logs")) / "interpretation"
        folder.mkdir(parents=True, exist_ok=True)
        per_class = per_class_scores(log_probs, targets, names)
        pairs = confused_pairs(log_probs, targets, names)[: self.pairs]
        write_csv(folder / "per_class.csv", ["class", "precision", "recall", "f1", "support"], per_class)
        write_csv(folder / "confused_pairs.csv", ["true", "predicted", "count"], pairs)
        top = self._top_losses(trainer, log_probs, targets, names, folder)
        logger = tensorboard(trainer)
        if logger is not None:
            text = logger.experiment.add_text
            text("interpret/per_class", markdown(["class", "precision", "recall", "f1", "support"], per_class))
            text("interpret/confused_pairs", markdown(["true", "predicted", "count"], pairs))
            logger.experiment.flush()
        worst = ", ".join(f"{t} as {p} ({n})" for t, p, n in pairs[:3]) or "none"
        print(
            f"interpretation: {folder}\n  most confused (true as predicted): {worst}\n"
            f"  lowest F1: {min(per_class, key=lambda row: row[3])[0]}; top {top} losses drawn",
            flush=True,
        )

    def _top_losses(self, trainer, log_probs, targets, names, folder: Path) -> int:
        losses = -log_probs.gather(1, targets[:, None]).squeeze(1)
        k = min(self.top_k, len(losses))
        order = losses.topk(k).indices.tolist() if k else []
        probs = log_probs.exp()
        datamodule = trainer.datamodule
        images, sample_names = (
            datamodule.test_samples(order) if isinstance(datamodule, Inspectable) and order else (None, [])
        )
        sample_names = sample_names or [f"test[{i}]" for i in order]
        rows = []
        for i, name in zip(order, sample_names, strict=True):
            predicted = int(probs[i].argmax())
            rows.append(
                [
                    name,
                    names[int(targets[i])],
                    names[predicted],
                    f"{float(probs[i, predicted]):.4f}",
                    f"{losses[i]:.4f}",
                ]
            )
        write_csv(folder / "top_losses.csv", ["sample", "true", "predicted", "probability", "loss"], rows)
        if images is None:
            return 0
        titles = [f"loss {float(losses[i]):.2f}" for i in order]
        fig = figures.prediction_grid(images, probs[order], names, targets[order], titles)
        logger = tensorboard(trainer)
        if logger is not None:
            logger.experiment.add_figure("interpret/top_losses", fig, global_step=trainer.global_step, close=False)
        figures.save(fig, folder / "top_losses.png")
        return len(order)


def per_class_scores(log_probs: torch.Tensor, targets: torch.Tensor, names: list[str]) -> list[list]:
    """One row per class: name, precision, recall, F1 (torchmetrics, no averaging) and support."""
    preds, k = log_probs.argmax(1), len(names)
    scores = [
        fn(preds, targets, num_classes=k, average=None, validate_args=False)
        for fn in (multiclass_precision, multiclass_recall, multiclass_f1_score)
    ]
    support = torch.bincount(targets, minlength=k)
    return [[name, *(f"{float(s[c]):.4f}" for s in scores), int(support[c])] for c, name in enumerate(names)]


def confused_pairs(log_probs: torch.Tensor, targets: torch.Tensor, names: list[str]) -> list[list]:
    """(true, predicted, count) for every off-diagonal cell of the confusion matrix with a count, largest first."""
    matrix = multiclass_confusion_matrix(log_probs.argmax(1), targets, num_classes=len(names), validate_args=False)
    matrix.fill_diagonal_(0)
    cells = [(int(matrix[t, p]), t, p) for t in range(len(names)) for p in range(len(names)) if matrix[t, p] > 0]
    return [[names[t], names[p], n] for n, t, p in sorted(cells, key=lambda c: (-c[0], c[1], c[2]))]


def markdown(header: list[str], rows: list[list]) -> str:
    """A table for TensorBoard's TEXT tab."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
