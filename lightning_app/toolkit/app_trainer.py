"""Lightning's Trainer with the app's extra subcommands: ``lr_find`` and ``interpret``.

LightningCLI makes a subcommand of each name in ``LightningCLI.subcommands()`` and reads its flags from the
trainer method of that name (its signature and docstring), then calls it with the model and the datamodule.
These methods are that extension point: each says what it does and hands the work to a module of its own.
"""

from __future__ import annotations

from lightning.pytorch import LightningDataModule, LightningModule, Trainer

from lightning_app.errors import CheckpointError
from lightning_app.toolkit.interpret import Interpretation
from lightning_app.toolkit.lr_find import find_lr


def needs_checkpoint(subcommand: str, ckpt_path: str | None) -> str:
    if not ckpt_path:
        raise CheckpointError(f"{subcommand} needs a trained model: pass --ckpt_path best (or last, or a .ckpt file)")
    return ckpt_path


class AppTrainer(Trainer):
    """``lightning.Trainer`` plus the methods behind ``lr_find`` and ``interpret``."""

    suggested_lr: float | None = None  # the last lr_find's suggestion

    def lr_find(
        self,
        model: LightningModule,
        datamodule: LightningDataModule | None = None,
        min_lr: float = 1e-6,
        max_lr: float = 1.0,
        num_training: int = 100,
        mode: str = "exponential",
        early_stop_threshold: float | None = 4.0,
    ) -> float | None:
        """Find a learning rate: Lightning's range test, its plot, and the fit command that uses it.

        Args:
            min_lr: the first learning rate tried.
            max_lr: the last learning rate tried.
            num_training: optimizer steps of the test, each at a larger rate.
            mode: ``exponential`` or ``linear`` growth of the rate.
            early_stop_threshold: stop once the loss exceeds this multiple of the best loss (null: never).
        """
        self.suggested_lr = find_lr(self, model, datamodule, min_lr, max_lr, num_training, mode, early_stop_threshold)
        return self.suggested_lr

    def interpret(
        self,
        model: LightningModule,
        datamodule: LightningDataModule | None = None,
        ckpt_path: str | None = None,
        top_k: int = 16,
    ) -> None:
        """Test, then show what the model gets wrong: top losses, most-confused pairs, per-class scores.

        Args:
            ckpt_path: the checkpoint to interpret: a .ckpt file, ``best`` or ``last``.
            top_k: how many of the highest-loss test images to draw.
        """
        ckpt_path = needs_checkpoint("interpret", ckpt_path)
        self.callbacks.append(Interpretation(top_k=top_k))
        self.test(model, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False)
