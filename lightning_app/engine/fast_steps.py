"""The fast training path: each loaded batch split into the lesson's optimizer steps, without per-step hooks.

Lightning's per-step machinery (``manual_backward``, ``LightningOptimizer.step``, the loop's hooks around each
batch) costs more host time than a step of the lesson's small networks (docs/speed.md). :class:`FastSteps` makes the
same optimizer steps (same samples in the same order, same updates, same schedule) from loaded batches of several
steps, calling the optimizer directly."""

from __future__ import annotations

import math
from collections.abc import Sized
from dataclasses import dataclass

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import nn
from torch.utils.data import BatchSampler

from lightning_app.engine.direct_optimizer import DirectAdam
from lightning_app.engine.lightning_reach import count_optimizer_steps


def loaded_batch_sizes(loader: object) -> list[int] | None:
    """The sizes of a training loader's batches in one epoch, where it tells: a loader with ``batch_sizes()``,
    or a DataLoader with a batch size (its sampler already sharded under DDP)."""
    if callable(getattr(loader, "batch_sizes", None)):
        return loader.batch_sizes()
    sampler = getattr(loader, "batch_sampler", None)
    if isinstance(sampler, BatchSampler) and isinstance(sampler.sampler, Sized):
        full, rest = divmod(len(sampler.sampler), sampler.batch_size)
        return [sampler.batch_size] * full + ([rest] if rest and not sampler.drop_last else [])
    return None


@dataclass
class FastSteps:
    """Optimizer steps of ``step_size`` samples carved from each loaded batch, for a ``ClassificationModule``.

    ``direct`` (one process): ``loss.backward()`` and the optimizer's own update, and the steps counted once per
    loaded batch; with ``direct_update`` (no user's code in the run: ``lightning_app/provenance.py``) Adam's update
    goes through :class:`~lightning_app.engine.direct_optimizer.DirectAdam`, which skips ``Optimizer.step``'s
    per-call bookkeeping, else through ``optimizer.step()``, its hooks included. Otherwise (DDP) each step goes
    through Lightning's public ``manual_backward`` and ``LightningOptimizer.step``, which keep the gradient
    all-reduce and the hooks.
    Gradient clipping (``clip_val``, ``clip_algorithm`` as the Trainer's) runs on the device, as Lightning's.
    """

    step_size: int
    direct: bool = True
    direct_update: bool = False
    clip_val: float | None = None
    clip_algorithm: str = "norm"

    def total_steps(self, trainer: Trainer) -> int:
        """Optimizer steps in the whole run (the learning-rate schedule's length)."""
        loaded = trainer.estimated_stepping_batches  # loaded batches; this also builds the training loader
        sizes = loaded_batch_sizes(trainer.train_dataloader)
        if trainer.max_epochs in (None, -1) or math.isinf(loaded):
            return int(min(loaded, trainer.max_steps)) if trainer.max_steps > 0 else int(loaded)
        if sizes is None:  # count every loaded batch as full
            return int(loaded) * max(1, math.ceil(getattr(trainer.datamodule, "batch_size", 1) / self.step_size))
        per_epoch = sum(math.ceil(size / self.step_size) for size in sizes[: int(trainer.num_training_batches)])
        steps = per_epoch * max(trainer.max_epochs, 1)
        return min(steps, trainer.max_steps) if trainer.max_steps > 0 else steps

    def train_on(
        self, module: LightningModule, criterion: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Train on ``(x, y)`` in steps of ``step_size``. Returns, for the samples stepped on, their
        log-probabilities, their labels and their step's loss (for the epoch metrics), and each step's loss;
        nothing is read back to the host."""
        trainer = module.trainer
        xs, ys = x.split(self.step_size), y.split(self.step_size)
        if trainer.max_steps > 0:  # stop at max_steps, which Lightning checks only between loaded batches
            left = max(0, trainer.max_steps - trainer.global_step)
            xs, ys = xs[:left], ys[:left]
        lightning_optimizer = module.optimizers()
        optimizer = lightning_optimizer.optimizer
        direct = DirectAdam(optimizer) if self.direct and self.direct_update else None
        schedule = module.lr_schedulers()
        params = [p for group in optimizer.param_groups for p in group["params"]] if self.clip_val else []
        log_probs, losses = [], []
        for xb, yb in zip(xs, ys, strict=True):
            if direct is not None:
                direct.zero_grad()
            else:
                optimizer.zero_grad(set_to_none=True)
            out = module(xb)
            loss = criterion(out, yb)
            if self.direct:
                loss.backward()
                self._clip(params)
                direct.step() if direct is not None else optimizer.step()
            else:
                module.manual_backward(loss)
                if self.clip_val:
                    module.clip_gradients(lightning_optimizer, self.clip_val, self.clip_algorithm)
                lightning_optimizer.step()
            if schedule is not None:
                schedule.step()
            log_probs.append(out.detach())
            losses.append(loss.detach())
        if self.direct and losses:
            count_optimizer_steps(trainer, len(losses))
        if not losses:
            return x[:0], y[:0], x.new_zeros(0), x.new_zeros(0)
        per_sample = torch.cat([loss.expand(len(yb)) for loss, yb in zip(losses, ys, strict=False)])
        return torch.cat(log_probs), y[: len(per_sample)], per_sample, torch.stack(losses)

    def _clip(self, params: list[nn.Parameter]) -> None:
        if not self.clip_val:
            return
        if self.clip_algorithm == "value":
            torch.nn.utils.clip_grad_value_(params, self.clip_val)
        else:
            torch.nn.utils.clip_grad_norm_(params, self.clip_val)
