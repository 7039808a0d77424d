"""A seeded fit of the tiny MNIST with a plain Trainer, and its per-step losses."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch import Trainer

from tests.helpers.callbacks import RecordLosses


def fit_tiny_mnist(
    data_dir: Path,
    accelerator: str,
    epochs: int,
    make_model,
    callbacks=(),
    trainer_kwargs=None,
    ckpt_path=None,
    **data_kwargs,
):
    """Fit ``make_model()`` (seeded) on the tiny MNIST (540 training samples, batches of 64 unless given), on
    Lightning's per-step path unless ``callbacks`` holds the app's FastPath.

    Returns the per-batch training losses (on the CPU) and the trainer."""
    import torch
    from lightning.pytorch import Trainer, seed_everything

    from datamodules import MNISTDataModule

    seed_everything(0)
    model = make_model()
    record = RecordLosses()
    quiet = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
    trainer_kwargs = {"max_epochs": epochs, "enable_model_summary": False, **quiet, **(trainer_kwargs or {})}
    trainer = Trainer(accelerator=accelerator, devices=1, callbacks=[record, *callbacks], **trainer_kwargs)
    datamodule = MNISTDataModule(data_dir=str(data_dir), **{"batch_size": 64, **data_kwargs})
    trainer.fit(model, datamodule, ckpt_path=ckpt_path)
    return torch.stack(record.losses).cpu(), trainer


def train_losses(data_dir: Path, accelerator: str, epochs: int, make_model, **data_kwargs):
    """The per-batch training losses of :func:`fit_tiny_mnist`."""
    return fit_tiny_mnist(data_dir, accelerator, epochs, make_model, **data_kwargs)[0]


def quiet_trainer(**kwargs) -> Trainer:
    settings = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
    return Trainer(enable_model_summary=False, accelerator="cpu", **settings, **kwargs)
