"""What a run shows in TensorBoard beyond the logged scalars: overlaid curves, prediction pictures each
epoch, a confusion matrix at test time, the learning rate, and the hyperparameters with the final metrics."""

from __future__ import annotations

import time

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import TensorBoardLogger
from torchmetrics.classification import MulticlassConfusionMatrix

from lightning_app import figures
from lightning_app.contracts import ClassificationData
from lightning_app.runs.checkpoints import monitoring_checkpoint

CURVES = {"loss": ["train/loss", "val/loss"], "accuracy": ["train/acc", "val/acc"]}


def tensorboard(trainer: Trainer) -> TensorBoardLogger | None:
    return next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)


def trainer_settings(trainer: Trainer) -> dict[str, object]:
    """The Trainer's settings that make runs differ, for TensorBoard's HParams panel beside the model's and data's."""
    return {
        "trainer/max_epochs": trainer.max_epochs,
        "trainer/max_steps": trainer.max_steps,
        "trainer/precision": str(trainer.precision),
        "trainer/accumulate_grad_batches": trainer.accumulate_grad_batches,
        "trainer/gradient_clip_val": trainer.gradient_clip_val or 0,
        "trainer/devices": trainer.num_devices,
        "trainer/num_nodes": trainer.num_nodes,
        "trainer/fast_path": getattr(trainer.lightning_module, "step_engine", None) is not None,
    }


class LearningRate(LearningRateMonitor):
    """Lightning's LearningRateMonitor (per epoch by default), quietly off when the run has no logger.

    Per epoch it logs each optimizer's rates under Lightning's names (``lr-Adam``, ``lr-Adam/pg2`` for a second
    param group) at ``trainer.global_step``, the optimizer steps every scalar of a run is logged at, on the fast
    path too. ``step`` or ``None`` is Lightning's own monitor, for which the fast path steps aside.
    """

    def __init__(self, logging_interval: str | None = "epoch", log_momentum: bool = False) -> None:
        super().__init__(logging_interval=logging_interval, log_momentum=log_momentum)

    @property
    def fast_path_safe(self) -> bool:
        return self.logging_interval == "epoch"

    def on_train_start(self, trainer: Trainer, *args, **kwargs) -> None:
        if trainer.loggers:
            super().on_train_start(trainer, *args, **kwargs)

    def on_train_epoch_start(self, trainer: Trainer, *args, **kwargs) -> None:
        if not trainer.loggers:
            return
        if self.logging_interval != "epoch":
            super().on_train_epoch_start(trainer, *args, **kwargs)
            return
        rates, seen = {}, {}
        for optimizer in trainer.optimizers:
            name = f"lr-{type(optimizer).__name__}"
            seen[name] = seen.get(name, -1) + 1
            name += f"-{seen[name]}" if seen[name] else ""
            groups = optimizer.param_groups
            for i, group in enumerate(groups):
                rates[name if len(groups) == 1 else f"{name}/pg{i + 1}"] = float(group["lr"])
                momentum = group["betas"][0] if "betas" in group else group.get("momentum")
                if self.log_momentum and momentum is not None:
                    rates[f"{name}-momentum" if len(groups) == 1 else f"{name}/pg{i + 1}-momentum"] = float(momentum)
        for logger in trainer.loggers:
            logger.log_metrics(rates, step=trainer.global_step)


class TensorBoardViews(Callback):
    """Pictures and summaries for TensorBoard.

    - SCALARS: a "curves" section with train and val loss, and train and val accuracy, each on one chart.
    - IMAGES: ``val/predictions``, ``samples`` validation images beside their class probabilities (wrong ones
      in red), after a validation at most every ``every_s`` seconds and always after the last epoch (drawing
      takes about 0.1 s, a quarter of a fast-path epoch on a GPU); ``test/confusion_matrix`` after testing.
    - HPARAMS: the model's, data's and Trainer's settings (epochs, precision, devices...) with ``hp/test_acc``,
      ``hp/test_loss``, ``hp/best_val_acc``.
    """

    fast_path_safe = True  # acts per epoch, or reads loaded batches as they are (contracts.FastPathSafe)

    def __init__(self, samples: int = 8, every_s: float = 10.0) -> None:
        self.samples = samples
        self.every_s = every_s
        self._drawn_at: float | None = None
        self._images: tuple[torch.Tensor, torch.Tensor] | None = None
        self._confusion: MulticlassConfusionMatrix | None = None

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        logger = tensorboard(trainer)
        if logger is not None and trainer.is_global_zero:
            logger.experiment.add_custom_scalars(
                {"curves": {name: ["Multiline", tags] for name, tags in CURVES.items()}}
            )

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        logger = tensorboard(trainer)
        datamodule = trainer.datamodule
        if logger is None or trainer.sanity_checking or not trainer.is_global_zero or self.samples < 1:
            return
        if not isinstance(datamodule, ClassificationData):
            return
        last = trainer.current_epoch + 1 >= (trainer.max_epochs or 0) or trainer.should_stop
        now = time.monotonic()
        if not last and self._drawn_at is not None and now - self._drawn_at < self.every_s:
            return
        self._drawn_at = now
        if self._images is None:
            self._images = datamodule.sample_images(self.samples)
        images, labels = self._images
        probs = pl_module(datamodule.normalize(images.to(pl_module.device))).exp().float()
        fig = figures.prediction_grid(images, probs, pl_module.class_names, labels)
        logger.experiment.add_figure("val/predictions", fig, global_step=trainer.global_step, close=True)

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._confusion = MulticlassConfusionMatrix(pl_module.num_classes, validate_args=False).to(pl_module.device)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self._confusion is not None and isinstance(outputs, dict) and "preds" in outputs:
            self._confusion.update(outputs["preds"], batch[1])

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        logger = tensorboard(trainer)
        if self._confusion is None:
            return
        matrix = self._confusion.compute()  # synced across processes
        self._confusion = None
        if logger is None or not trainer.is_global_zero:
            return
        fig = figures.confusion_matrix_figure(matrix, pl_module.class_names)
        logger.experiment.add_figure("test/confusion_matrix", fig, global_step=trainer.global_step, close=True)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        logger = tensorboard(trainer)
        if logger is None or not trainer.is_global_zero:
            return
        metrics = {
            f"hp/{k.replace('/', '_')}": float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")
        }
        ckpt = monitoring_checkpoint(trainer)
        if ckpt is not None and ckpt.best_model_score is not None:
            metrics[f"hp/best_{ckpt.monitor.replace('/', '_')}"] = float(ckpt.best_model_score)
        params = {f"model/{k}": v for k, v in pl_module.hparams.items() if not k.startswith("_")}
        if trainer.datamodule is not None:
            params |= {f"data/{k}": v for k, v in trainer.datamodule.hparams.items() if not k.startswith("_")}
        params |= trainer_settings(trainer)
        logger.log_hyperparams(params, metrics)
