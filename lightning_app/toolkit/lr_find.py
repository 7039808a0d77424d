"""``lr_find``: Lightning's learning-rate range test, its plot in the run folder and TensorBoard, and the ``fit``
command that uses the suggested rate."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.tuner import Tuner
from lightning.pytorch.utilities import rank_zero_only

from lightning_app import figures
from lightning_app.callbacks.tensorboard_views import tensorboard
from lightning_app.errors import TrainingError
from lightning_app.runs.run_folders import run_dir
from lightning_app.runs.storage import write_csv

# the flags of `lr_find` itself, which `fit` does not take (each with a value)
OWN_FLAGS = ("--min_lr", "--max_lr", "--num_training", "--mode", "--early_stop_threshold")


def find_lr(
    trainer: Trainer,
    model: LightningModule,
    datamodule: LightningDataModule | None,
    min_lr: float,
    max_lr: float,
    num_training: int,
    mode: str,
    early_stop_threshold: float | None,
) -> float | None:
    """Run Lightning's range test (the model's weights are restored afterwards), then write ``lr_find.png`` and
    ``lr_find.csv`` into the run folder, add the plot to TensorBoard and print the suggestion."""
    if not 0 < min_lr < max_lr:
        raise TrainingError(f"lr_find needs 0 < min_lr < max_lr, got {min_lr} and {max_lr}")
    if num_training < 2:
        raise TrainingError(f"num_training must be at least 2, got {num_training}")
    if mode not in ("exponential", "linear"):
        raise TrainingError(f"mode must be exponential or linear, got {mode!r}")
    if trainer.max_epochs == 0 or trainer.max_steps == 0:
        raise TrainingError("lr_find takes steps: --trainer.max_epochs 0 or --trainer.max_steps 0 allows none")
    finder = Tuner(trainer).lr_find(
        model,
        datamodule=datamodule,
        min_lr=min_lr,
        max_lr=max_lr,
        num_training=num_training,
        mode=mode,
        early_stop_threshold=early_stop_threshold,
        update_attr=False,
    )
    if finder is None:  # Lightning skips the range test under fast_dev_run
        return None
    if not finder.results.get("lr"):
        raise TrainingError("lr_find ran no step: the data has no training batch, or the run allows none")
    suggestion = finder.suggestion()
    _report(trainer, finder, suggestion)
    return suggestion


@rank_zero_only
def _report(trainer: Trainer, finder, suggestion: float | None) -> None:
    lrs, losses = finder.results["lr"], finder.results["loss"]
    fig = finder.plot(suggest=suggestion is not None)
    ax = fig.axes[0]
    ax.set_title(f"Learning-rate range test: suggested {suggestion:.2e}" if suggestion else "Learning-rate range test")
    ax.set_ylabel("Training loss (smoothed)")
    logger = tensorboard(trainer)
    if logger is not None:
        logger.experiment.add_figure("lr_find", fig, global_step=0, close=False)
        logger.experiment.flush()
    folder = run_dir(trainer)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        write_csv(folder / "lr_find.csv", ["lr", "loss"], zip(lrs, losses, strict=False))
        figures.save(fig, folder / "lr_find.png")
    else:
        figures.close(fig)
    print(f"lr_find: {len(losses)} steps from {lrs[0]:.2e} to {lrs[-1]:.2e}", flush=True)
    if suggestion is None:
        print("no suggestion: too few steps before the loss diverged; raise --num_training or lower --max_lr")
    else:
        print(f"suggested learning rate: {suggestion:.3g}")
    if folder is not None:
        print(f"plot: {folder / 'lr_find.png'}\nTensorBoard: tensorboard --logdir {folder.parent} --host 127.0.0.1")


def fit_command(argv: Sequence[str], lr: float) -> str:
    """The ``fit`` command of the ``lr_find`` command line ``argv``, with ``--model.lr`` set to ``lr``."""
    args, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in (*OWN_FLAGS, "--model.lr"):
            skip = "=" not in arg
            continue
        args.append("fit" if arg == "lr_find" else arg)
    return shlex.join(["python", "-m", "lightning_app", *args, "--model.lr", f"{lr:.3g}"])
