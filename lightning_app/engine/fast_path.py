"""The fast path, on by default: loaded batches of several optimizer steps, stepped without per-step hooks.

The callback decides once per ``fit`` whether the fast steps (``engine/fast_steps.py``) make the same
optimizer steps as Lightning's per-step path here, and wires them in; otherwise it says in one line why the
run takes the per-step path. ``--fast_path null`` chooses the per-step path on purpose.
"""

from __future__ import annotations

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import GradientAccumulationScheduler, LearningRateFinder
from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy
from lightning.pytorch.utilities import rank_zero_info

from lightning_app.contracts import FastTrainable, GroupedData
from lightning_app.engine.fast_steps import FastSteps
from lightning_app.errors import SettingError

# hooks Lightning runs around each optimizer step, which the fast path does not run
CALLBACK_STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step", "on_before_zero_grad")
MODULE_STEP_HOOKS = (
    *CALLBACK_STEP_HOOKS,
    "backward",
    "optimizer_step",
    "optimizer_zero_grad",
    "configure_gradient_clipping",
    "lr_scheduler_step",
)
PRECISIONS = ("32-true", "32", "64-true", "64", "bf16-mixed", "bf16-true")  # no loss scaling needed


def overridden(obj: object, base: type, hooks: tuple[str, ...]) -> str | None:
    """The first of ``hooks`` that ``obj`` defines differently from ``base`` (in its class or on itself)."""
    for hook in hooks:
        if hook in vars(obj) or getattr(type(obj), hook, None) is not getattr(base, hook, None):
            return hook
    return None


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
    hook = overridden(model, LightningModule, MODULE_STEP_HOOKS)
    if hook:
        return f"{type(model).__name__} overrides {hook}, which runs at every optimizer step"
    if trainer.accumulate_grad_batches > 1:
        return f"--trainer.accumulate_grad_batches {trainer.accumulate_grad_batches}"
    if str(trainer.precision) not in PRECISIONS:
        return f"--trainer.precision {trainer.precision} scales the loss"
    if type(trainer.strategy) not in (SingleDeviceStrategy, DDPStrategy):
        return f"the {type(trainer.strategy).__name__} strategy"
    return None


class FastPath(Callback):
    """Train on the fast path wherever it makes the same optimizer steps as Lightning's per-step path.

    The datamodule loads ``steps_per_load`` steps' samples at once (``--data.batch_size`` stays the optimizer
    step: 64 is the lesson's), and the model splits each loaded batch into those steps, calling the optimizer
    itself: same samples in the same order, same updates, same learning-rate schedule, gradient clipping
    included. It is off, with one line saying why, when something needs Lightning's per-step hooks (a callback
    or model with ``on_before_backward``, ``on_after_backward``, ``on_before_optimizer_step``...), gradient
    accumulation, a loss-scaling precision (16-mixed) or another strategy than one device or DDP.

    On the fast path Lightning's batch counters (the progress bar, ``limit_train_batches`` and an integer
    ``val_check_interval``) count loaded batches; ``global_step``, ``max_steps`` and the schedule count
    optimizer steps, as on the per-step path. Evaluation loads ``steps_per_load`` batches at once too.

    64 steps a load (4,096 MNIST samples, 12.8 MB): each loaded batch costs loop hooks, fetching and metric
    updates, so fewer of them are faster, up to the point where a load stops fitting the caches (the
    comparison of 16, 64 and 256 is in docs/speed.md, "The engine's choices").
    """

    def __init__(self, steps_per_load: int = 64) -> None:
        if not isinstance(steps_per_load, int) or steps_per_load < 1:
            raise SettingError(f"--fast_path.steps_per_load must be a positive integer, got {steps_per_load}")
        self.steps_per_load = steps_per_load

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Wire the fast steps in for ``fit`` (they stay after it: ``global_step`` keeps reading their count), or
        take them out where they would not make Lightning's steps."""
        reason = blocker(trainer, pl_module)
        if reason is not None:
            if stage == "fit":
                rank_zero_info(f"fast path off: {reason}; training takes Lightning's per-step path")
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
            clip_val=trainer.gradient_clip_val or None,
            clip_algorithm=getattr(trainer.gradient_clip_algorithm, "value", None) or "norm",
        )
        pl_module.automatic_optimization = False
