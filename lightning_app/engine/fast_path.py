"""The fast path, on by default: loaded batches of several optimizer steps, stepped without per-step hooks.

The callback decides once per ``fit`` whether the fast steps (``engine/fast_steps.py``) make the same
optimizer steps as Lightning's per-step path here, and wires them in; otherwise it says in one line why the
run takes the per-step path. ``--fast_path null`` chooses the per-step path on purpose.
"""

from __future__ import annotations

import re

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import (
    EarlyStopping,
    GradientAccumulationScheduler,
    LearningRateFinder,
    ModelCheckpoint,
    ModelSummary,
    RichModelSummary,
    RichProgressBar,
    TQDMProgressBar,
)
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy

from lightning_app import provenance
from lightning_app.contracts import FastPathSafe, FastTrainable, GroupedData
from lightning_app.engine.fast_steps import FastSteps
from lightning_app.errors import SettingError
from lightning_app.notices import notice

# hooks Lightning runs around each optimizer step, which the fast path does not run
CALLBACK_STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step", "on_before_zero_grad")
MODULE_STEP_HOOKS = (
    *CALLBACK_STEP_HOOKS,
    "backward",
    "optimizer_step",
    "optimizer_zero_grad",
    "configure_gradient_clipping",
    "lr_scheduler_step",
    "on_train_batch_start",  # these two would see a loaded batch of several steps
    "on_train_batch_end",
)
# Lightning's callbacks that act only at the start or end of fit, an epoch or a validation, never per batch
# (LightningCLI's SaveConfigCallback writes config.yaml at the start), and its progress bars, which only show
# the count of loaded batches
EPOCH_LEVEL = (EarlyStopping, ModelSummary, RichModelSummary, SaveConfigCallback, TQDMProgressBar, RichProgressBar)
# the Trainer's flags that, given an integer, count batches (Lightning's docs); a loaded batch holds several
BATCH_COUNTS = ("limit_train_batches", "limit_val_batches", "limit_test_batches", "val_check_interval")
PRECISIONS = ("32-true", "32", "64-true", "64", "bf16-mixed", "bf16-true")  # no loss scaling needed


def overridden(obj: object, base: type, hooks: tuple[str, ...]) -> str | None:
    """The first of ``hooks`` that ``obj`` defines differently from ``base`` (in its class or on itself)."""
    for hook in hooks:
        if hook in vars(obj) or getattr(type(obj), hook, None) is not getattr(base, hook, None):
            return hook
    return None


def epoch_level(callback: Callback) -> bool:
    """Whether ``callback`` acts only per epoch or validation: an app callback that says so (``fast_path_safe``),
    or one of Lightning's known to (exactly that class: a subclass may add per-batch work). A ModelCheckpoint
    qualifies without ``every_n_train_steps`` and ``train_time_interval``, read from its ``state_key`` (the key
    its state is saved under in every checkpoint, so its format stays)."""
    if isinstance(callback, FastPathSafe):
        return bool(callback.fast_path_safe)
    if type(callback) in EPOCH_LEVEL:
        return True
    if type(callback) is ModelCheckpoint:
        key = callback.state_key
        return bool(re.search(r"'every_n_train_steps': (0|None)\b", key)) and "'train_time_interval': None" in key
    return False


def blocker(trainer: Trainer, model: LightningModule) -> str | None:
    """Why the fast path would not make Lightning's steps in this run, or None when it would."""
    if not isinstance(model, FastTrainable):
        return f"{type(model).__name__} has no step_engine"
    if not isinstance(trainer.datamodule, GroupedData):
        return "the datamodule has no batch_size and steps_per_load"
    for callback in trainer.callbacks:
        hook = overridden(callback, Callback, CALLBACK_STEP_HOOKS)
        if hook:
            return f"the callback {type(callback).__name__} has {hook}, which runs at every optimizer step"
        if isinstance(callback, LearningRateFinder):
            return "the learning-rate finder reads the loss after every optimizer step"
        if isinstance(callback, GradientAccumulationScheduler):
            return "GradientAccumulationScheduler accumulates gradients"
        if not epoch_level(callback):
            return f"the callback {type(callback).__name__} may act per batch or per step"
    hook = overridden(model, LightningModule, MODULE_STEP_HOOKS)
    if hook:
        return f"{type(model).__name__} overrides {hook}, which runs at every optimizer step"
    for flag in BATCH_COUNTS:
        value = getattr(trainer, flag)
        if isinstance(value, int) and not isinstance(value, bool):
            return f"--trainer.{flag} {value} counts batches, each one optimizer step"
    if trainer.accumulate_grad_batches > 1:
        return f"--trainer.accumulate_grad_batches {trainer.accumulate_grad_batches}"
    if str(trainer.precision) not in PRECISIONS:
        return f"--trainer.precision {trainer.precision} scales the loss"
    if type(trainer.strategy) not in (SingleDeviceStrategy, DDPStrategy):
        return f"the {type(trainer.strategy).__name__} strategy"
    return None


def only_known_code(trainer: Trainer, model: LightningModule) -> bool:
    """Whether nothing but the app's program and its libraries' classes run here (``lightning_app/provenance.py``),
    so no user's code can have registered the optimizer hooks a direct Adam update would skip."""
    parts = [model, trainer.datamodule, trainer.strategy, *trainer.callbacks, *trainer.loggers]
    return provenance.started_as_the_program() and all(provenance.known(part) for part in parts)


class FastPath(Callback):
    """Train on the fast path wherever it makes the same optimizer steps as Lightning's per-step path.

    The datamodule loads ``steps_per_load`` steps' samples at once (``--data.batch_size`` stays the optimizer
    step: 64 is the lesson's), and the model splits each loaded batch into those steps, calling the optimizer
    itself: same samples in the same order, same updates, same learning-rate schedule, gradient clipping
    included. It is off, with one line saying why, when something needs Lightning's per-step hooks (a callback
    or model with ``on_before_backward``, ``on_after_backward``, ``on_before_optimizer_step``...), gradient
    accumulation, a loss-scaling precision (16-mixed) or another strategy than one device or DDP.

    Only callbacks known to act per epoch run beside it (``epoch_level``): the app's own, which say so, and
    Lightning's EarlyStopping, ModelSummary, epoch-wise ModelCheckpoint and progress bars; any other callback,
    and an integer ``limit_*_batches`` or ``val_check_interval`` (which count batches), send the run to the
    per-step path, so every callback, logger and hook sees what Lightning promises. ``global_step``,
    ``max_steps``, the schedule and the step every scalar is logged at count optimizer steps, as on the
    per-step path (the epoch's scalars are logged with a ``step`` value, Lightning's documented way to set the
    logger's step); the progress bar counts loaded batches. Evaluation loads ``steps_per_load`` batches at once
    too.

    64 steps a load (4,096 MNIST samples, 12.8 MB): each loaded batch costs loop hooks, fetching and metric
    updates, so fewer of them are faster, up to the point where a load stops fitting the caches (the
    comparison of 16, 64 and 256 is in docs/speed.md, "The engine's choices").
    """

    fast_path_safe = True  # acts per epoch, or reads loaded batches as they are (contracts.FastPathSafe)

    def __init__(self, steps_per_load: int = 64) -> None:
        if not isinstance(steps_per_load, int) or steps_per_load < 1:
            raise SettingError(f"--fast_path.steps_per_load must be a positive integer, got {steps_per_load}")
        self.steps_per_load = steps_per_load

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Wire the fast steps in for ``fit`` (they stay after it: ``global_step`` keeps reading their count), or
        take them out where they would not make Lightning's steps."""
        reason = blocker(trainer, pl_module)
        if reason is not None:
            if isinstance(trainer.datamodule, GroupedData):
                trainer.datamodule.steps_per_load = 1  # one step a batch, also after a fast fit in this process
            if stage == "fit":
                notice(f"fast path off: {reason}; training takes Lightning's per-step path")
                if getattr(pl_module, "step_engine", None) is not None:  # set by an earlier fit
                    pl_module.step_engine = None
                    pl_module.automatic_optimization = True
            return
        trainer.datamodule.steps_per_load = self.steps_per_load
        if stage != "fit":
            return
        pl_module.step_engine = FastSteps(
            step_size=trainer.datamodule.batch_size,
            direct=trainer.world_size == 1,
            direct_update=only_known_code(trainer, pl_module),
            clip_val=trainer.gradient_clip_val or None,
            clip_algorithm=getattr(trainer.gradient_clip_algorithm, "value", None) or "norm",
        )
        pl_module.automatic_optimization = False

    # ---- one step axis: the epoch's scalars at the optimizer step Lightning's per-step path logs them at ----

    def _log_step(self, trainer: Trainer, pl_module: LightningModule, step: int) -> None:
        if not trainer.sanity_checking:
            pl_module.log("step", float(max(step, 0)), on_step=False, on_epoch=True)
            pl_module.log("epoch", float(trainer.current_epoch), on_step=False, on_epoch=True)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._log_step(trainer, pl_module, trainer.global_step - 1)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == "fit":
            self._log_step(trainer, pl_module, trainer.global_step - 1)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._log_step(trainer, pl_module, trainer.global_step)
