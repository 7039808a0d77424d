"""The one place the app uses a part of Lightning that is not public API, and why.

The fast path (``engine/fast_steps.py``) steps the optimizer itself, and Lightning counts an optimizer step only
inside ``LightningOptimizer.step()``, which also runs the per-step hooks the fast path exists to skip; Lightning
has no public call to count steps made outside it. Under manual optimization ``trainer.global_step`` reads the
training loop's optimizer-step progress, which the loop saves and restores with each checkpoint, so the count is
added there. ``CHECKED`` names the Lightning releases this was read and tested on;
``tests/engine/test_lightning_reach.py`` fails with a clear message on any other, before a run could count wrong.
"""

from __future__ import annotations

from lightning.pytorch import Trainer

CHECKED = ("2.6",)  # Lightning's minor releases whose loop keeps the count where count_optimizer_steps adds it


def count_optimizer_steps(trainer: Trainer, steps: int) -> None:
    """Add ``steps`` optimizer steps to ``trainer.global_step`` (manual optimization)."""
    trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress.increment_by(steps)
