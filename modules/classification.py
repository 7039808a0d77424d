"""The classification base shared by every model of the lesson: loss, optimizer, metrics, logging."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Protocol

import torch
from lightning.pytorch import LightningModule
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from modules.errors import ModelError
from modules.weights import load_weights

LR_SCHEDULES = ("cosine", "constant")
OPTIMIZERS = ("adam", "sgd")
# settings of earlier versions, still found in their checkpoints' hyperparameters, accepted and ignored: the fast
# path they set is now a section of the app, on by default
RETIRED_SETTINGS = frozenset({"step_batch", "cuda_graph"})


class StepEngine(Protocol):
    """What makes a loaded batch's optimizer steps when the model does not (the app's fast path sets one)."""

    def total_steps(self, trainer) -> int:  # noqa: ANN001 - a lightning Trainer
        """The optimizer steps of the whole run: the learning-rate schedule's length."""

    def train_on(self, module: LightningModule, criterion: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple:
        """Step on ``(x, y)``; returns the stepped samples' log-probabilities, labels and losses (for the epoch
        metrics) and each optimizer step's loss."""


def adam(params: Iterator[nn.Parameter], lr: float) -> torch.optim.Adam:
    """The lesson's Adam, with the fused kernel where the parameters' device has one (about 0.3 ms less per
    step of the MLP on a CPU than the default implementation; the same update)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except RuntimeError:  # a device without a fused Adam
        return torch.optim.Adam(params, lr=lr)


def make_optimizer(name: str, params: Iterator[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """The lesson's optimizers: ``adam`` (Parts 4-8) or plain ``sgd`` (Part 3's ``optim.SGD(params, lr)``)."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    return adam(params, lr)


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """The rate's factor at optimizer step ``step``: a linear rise over ``warmup`` steps, then a cosine to 0."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


class WarmupCosineLR(torch.optim.lr_scheduler.LRScheduler):
    """``warmup_cosine`` of each param group's first rate, also for groups added later (BackboneFinetuning adds
    the backbone's): torch's LambdaLR fixes its groups when built and fails on one added after."""

    def __init__(self, optimizer: torch.optim.Optimizer, total: int, warmup: int) -> None:
        self.total, self.warmup = max(1, total), warmup
        self.planned = self.total  # this run's length as configured; a restored state brings the old run's
        super().__init__(optimizer)

    def load_state_dict(self, state_dict: dict) -> None:
        planned = self.planned
        super().load_state_dict(state_dict)
        self.planned = planned

    def fit_to_run(self, epochs_done: int, max_epochs: int) -> None:
        """After a resume, end the decay at this run's last step: ``--data.batch_size`` or
        ``--trainer.max_epochs`` may differ from the run that wrote the checkpoint. Unchanged settings give the
        same length, so an exact resume stays exact."""
        if max_epochs > epochs_done > 0:
            per_epoch = self.planned / max_epochs
            self.total = max(1, round(self.last_epoch + (max_epochs - epochs_done) * per_epoch))
            # the next step's rates on the new length (a run that ended its decay would make it at rate 0)
            for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
                group["lr"] = lr

    def get_last_lr(self) -> list[float | torch.Tensor]:
        """The rates the optimizer steps with now (also right after ``fit_to_run`` changed them)."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def get_lr(self) -> list[float | torch.Tensor]:
        factor = warmup_cosine(max(self.last_epoch, 0), self.total, self.warmup)
        rates = []
        for group in self.optimizer.param_groups:
            if "initial_lr" not in group:  # a group added during the run starts its schedule at its own rate
                lr = group["lr"]
                group["initial_lr"] = lr.clone() if isinstance(lr, torch.Tensor) else lr
            rates.append(group["initial_lr"] * factor)
        return rates


def lr_scheduler(
    optimizer: torch.optim.Optimizer, name: str, total: int, warmup: float
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The ``lr_schedule`` over ``total`` optimizer steps (None for ``constant``), stepped once per optimizer step."""
    if name == "constant":
        return None
    return WarmupCosineLR(optimizer, total, int(warmup * total))


class ClassificationModule(LightningModule):
    """A network that outputs log-probabilities, trained with NLLLoss and Adam (or SGD) as in the lesson.

    Subclasses build ``self.net`` (ending in ``LogSoftmax``) and may narrow :meth:`trainable_parameters`.
    Logs ``{train,val,test}/loss`` and ``{train,val,test}/acc`` once per epoch from torchmetrics metrics;
    nothing is read back to the host on a training step.

    Training runs Lightning's per-step path: one batch, one ``training_step``, one optimizer step. When a
    :class:`StepEngine` is set (``step_engine``), each loaded batch is handed to it instead, and it makes the
    optimizer steps (the app's fast path does so where the steps are the same).

    Args:
        num_classes: number of classes (linked from the datamodule by the CLI).
        lr: the optimizer's learning rate.
        optimizer: ``adam`` (the default) or ``sgd``, plain stochastic gradient descent as in the lesson's Part 3.
        class_names: names of the classes, kept in the checkpoint for predictions.
        lr_schedule: ``cosine`` decays the learning rate to 0 over the run, step by step; ``constant`` keeps it
            (the lesson's loop).
        warmup: the fraction of the run's steps over which ``cosine`` first rises linearly to ``lr``.
        init_from: a checkpoint or state_dict file whose weights a new ``fit`` starts from (fresh optimizer and
            schedule, new run); ``fit --ckpt_path`` instead resumes a run exactly as it was.
    """

    net: nn.Module
    step_engine: StepEngine | None = None

    def __init__(
        self,
        num_classes: int = 10,
        lr: float = 0.003,
        class_names: list[str] | None = None,
        lr_schedule: str = "cosine",
        init_from: str | None = None,
        warmup: float = 0.0,
        optimizer: str = "adam",
        **retired: object,
    ) -> None:
        super().__init__()
        unknown = sorted(set(retired) - RETIRED_SETTINGS)
        if unknown:
            raise ModelError(
                f"{type(self).__name__} has no settings {', '.join(unknown)}: drop them (fit --help lists its settings)"
            )
        if not 0 <= warmup < 1:
            raise ModelError(f"warmup must be a fraction of the run in [0, 1), got {warmup}")
        if lr_schedule not in LR_SCHEDULES:
            raise ModelError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {lr_schedule!r}")
        if lr <= 0:
            raise ModelError(f"lr must be positive, got {lr}")
        if optimizer not in OPTIMIZERS:
            raise ModelError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
        self.save_hyperparameters(ignore=list(retired))
        self.num_classes = num_classes
        self.class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self.criterion = nn.NLLLoss()
        accuracy = MulticlassAccuracy(num_classes=num_classes, average="micro", validate_args=False)
        mean = MeanMetric(nan_strategy="disable")  # "disable": no NaN check, which would sync the GPU each step
        self.train_acc, self.val_acc, self.test_acc = accuracy.clone(), accuracy.clone(), accuracy.clone()
        self.train_loss, self.val_loss, self.test_loss = mean.clone(), mean.clone(), mean.clone()

    def setup(self, stage: str) -> None:
        """A new ``fit`` starts from ``init_from``'s weights; a resumed one (``ckpt_path``) from its checkpoint's."""
        if stage == "fit" and self.hparams.init_from and self.trainer.ckpt_path is None:
            load_weights(self, self.hparams.init_from)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities, shape (batch, num_classes)."""
        return self.net(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        """Loss and metric updates only: values are computed and logged once per epoch (see ``_log_epoch``)."""
        x, y = batch
        log_probs = self(x)
        loss = self.criterion(log_probs, y)
        self._update_metrics(stage, log_probs.detach(), y, loss.detach().expand(len(y)))
        return {"loss": loss, "preds": log_probs.detach().argmax(dim=1), "log_probs": log_probs.detach()}

    def _update_metrics(self, stage: str, log_probs: torch.Tensor, y: torch.Tensor, losses: torch.Tensor) -> None:
        """``losses``: each sample's batch loss (MeanMetric(nan_strategy="disable") ignores ``weight=``)."""
        if len(y):
            getattr(self, f"{stage}_acc").update(log_probs, y)
            getattr(self, f"{stage}_loss").update(losses)

    def _log_epoch(self, stage: str) -> None:
        """Log ``{stage}/loss`` and ``{stage}/acc`` for the epoch (synced across processes), then reset.

        ``self.log`` once per epoch instead of on every step: Lightning's per-call bookkeeping costs about
        1 ms, as much as a training step of the lesson's MLP.
        """
        for name in ("loss", "acc"):
            metric = getattr(self, f"{stage}_{name}")
            if metric.update_count:
                self.log(f"{stage}/{name}", metric.compute(), on_step=False, on_epoch=True, prog_bar=stage != "train")
            metric.reset()

    def training_step(self, batch, batch_idx: int) -> torch.Tensor | dict[str, torch.Tensor]:
        if self.step_engine is None:
            return self._step(batch, "train")["loss"]
        x, y = batch
        log_probs, labels, losses, step_losses = self.step_engine.train_on(self, self.criterion, x, y)
        self._update_metrics("train", log_probs, labels, losses)
        return {"loss": step_losses.mean(), "step_losses": step_losses}  # each step's, for the NaN check

    def validation_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        return self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        """Loss, predicted classes and log-probabilities, for callbacks (confusion matrix, interpretation)."""
        return self._step(batch, "test")

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def predict_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        """Class probabilities, shape (batch, num_classes)."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(x).exp()

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        return (p for p in self.parameters() if p.requires_grad)

    def on_train_start(self) -> None:
        trainer = self.trainer
        if trainer.max_steps == -1 and trainer.max_epochs not in (None, -1):
            for config in trainer.lr_scheduler_configs:
                if isinstance(config.scheduler, WarmupCosineLR):
                    config.scheduler.fit_to_run(trainer.current_epoch, trainer.max_epochs)

    def configure_optimizers(self):
        optimizer = make_optimizer(self.hparams.get("optimizer", "adam"), self.trainable_parameters(), self.hparams.lr)
        if self.step_engine is not None:
            steps = self.step_engine.total_steps(self.trainer)
        else:
            steps = int(self.trainer.estimated_stepping_batches)
        schedule = lr_scheduler(optimizer, self.hparams.lr_schedule, steps, self.hparams.get("warmup", 0.0))
        if schedule is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
