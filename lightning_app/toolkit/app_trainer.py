"""Lightning's Trainer with the app's extra subcommands: ``lr_find``, ``interpret`` and ``check``.

LightningCLI makes a subcommand of each name in ``LightningCLI.subcommands()`` and reads its flags from the
trainer method of that name (its signature and docstring), then calls it with the model and the datamodule.
These methods are that extension point: each says what it does and hands the work to a module of its own.
"""

from __future__ import annotations

from lightning.pytorch import LightningDataModule, LightningModule, Trainer

from lightning_app.errors import CheckpointError
from lightning_app.toolkit.data_check import check_data
from lightning_app.toolkit.interpret import Interpretation
from lightning_app.toolkit.lr_find import find_lr


def needs_checkpoint(subcommand: str, ckpt_path: str | None) -> str:
    if not ckpt_path:
        raise CheckpointError(f"{subcommand} needs a trained model: pass --ckpt_path best (or last, or a .ckpt file)")
    return ckpt_path


class AppTrainer(Trainer):
    """``lightning.Trainer`` plus the methods behind ``lr_find``, ``interpret`` and ``check``."""

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

    def check(
        self,
        model: LightningModule,
        datamodule: LightningDataModule | None = None,
        near: float = 0.995,
        near_features: float = 0.95,
        folds: int = 5,
        fail_on: str = "",
        show: int = 8,
    ) -> dict:
        """Check the data before training: duplicates, leaks between splits, likely label errors, unreadable files.

        Args:
            near: the correlation of two pictures' 32x32 grey thumbnails from which they count as near duplicates
                (resized or recompressed copies); 1: exact copies only.
            near_features: with a backbone (a transfer model), the cosine of two pictures' features from which
                they count as near duplicates too (cropped copies).
            folds: folds of the out-of-fold predictions that find label issues.
            fail_on: findings that end the command with an error, for CI: any of duplicates, leaks,
                label_issues, unreadable, separated by commas.
            show: how many of each finding the terminal and the pictures show.
        """
        return check_data(self, model, datamodule, near, near_features, folds, fail_on, show)
