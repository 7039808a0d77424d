"""The classification base shared by every model of the lesson: loss, optimizer, metrics, logging."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from lightning.pytorch import LightningModule
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from modules.errors import ModelError

LR_SCHEDULES = ("cosine", "constant")


class ClassificationModule(LightningModule):
    """A network that outputs log-probabilities, trained with NLLLoss and Adam as in the lesson.

    Subclasses build ``self.net`` (ending in ``LogSoftmax``) and may narrow :meth:`trainable_parameters`.
    Logs ``{train,val,test}/loss`` and ``{train,val,test}/acc`` once per epoch; nothing is read back to the
    host on a training step.

    Args:
        num_classes: number of classes (linked from the datamodule by the CLI).
        lr: Adam's learning rate.
        class_names: names of the classes, kept in the checkpoint for predictions.
        lr_schedule: ``cosine`` decays the learning rate to 0 over the run, step by step; ``constant`` keeps it
            (the lesson's loop).
    """

    net: nn.Module

    def __init__(
        self,
        num_classes: int = 10,
        lr: float = 0.003,
        class_names: list[str] | None = None,
        lr_schedule: str = "cosine",
    ) -> None:
        super().__init__()
        if lr_schedule not in LR_SCHEDULES:
            raise ModelError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {lr_schedule!r}")
        if lr <= 0:
            raise ModelError(f"lr must be positive, got {lr}")
        self.save_hyperparameters()
        self.num_classes = num_classes
        self.class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self.criterion = nn.NLLLoss()
        metric = MulticlassAccuracy(num_classes=num_classes, average="micro", validate_args=False)
        self.train_acc = metric.clone()
        self.val_acc = metric.clone()
        self.test_acc = metric.clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities, shape (batch, num_classes)."""
        return self.net(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        x, y = batch
        log_probs = self(x)
        loss = self.criterion(log_probs, y)
        accuracy: MulticlassAccuracy = getattr(self, f"{stage}_acc")
        accuracy.update(log_probs, y)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, prog_bar=stage != "train", sync_dist=True)
        self.log(f"{stage}/acc", accuracy, on_step=False, on_epoch=True, prog_bar=True)
        return {"loss": loss, "preds": log_probs.detach().argmax(dim=1)}

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")["loss"]

    def validation_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        return self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        """Loss and predicted classes, for callbacks such as the confusion matrix."""
        return self._step(batch, "test")

    def predict_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        """Class probabilities, shape (batch, num_classes)."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(x).exp()

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        return (p for p in self.parameters() if p.requires_grad)

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.trainable_parameters(), lr=self.hparams.lr)
        if self.hparams.lr_schedule == "constant":
            return optimizer
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
