"""A network's forward and backward captured once as CUDA graphs (``torch.cuda.make_graphed_callables``)."""

from __future__ import annotations

import torch
from torch import nn


def graph_blocker(device: torch.device, world_size: int, precision: str) -> str | None:
    """Why a training step cannot be captured here, or None when it can."""
    if device.type != "cuda":
        return f"it needs a CUDA device, and this run trains on {device.type}"
    if world_size > 1:
        return "it is not supported under DDP here (gradient all-reduce is not captured)"
    if precision not in ("32-true", "32"):
        return f"it needs 32-bit precision, and this run uses {precision}"
    return None


class GraphedForward:
    """Runs ``net`` through CUDA graphs captured for one batch shape, and eagerly otherwise.

    After :meth:`capture`, a training forward of the captured shape replays one graph (and its backward
    another) instead of launching each layer's kernels from Python: small networks are bound by launch and
    host overhead, not arithmetic. Parameters stay the module's own, so the optimizer, checkpoints and
    evaluation see no difference. Eval mode (validation, test, predict) and other shapes (an epoch's
    smaller last batch) run the ordinary forward. Dropout stays random: its generator is captured with it.
    """

    def __init__(self, net: nn.Module) -> None:
        self.net = net
        self.shape: torch.Size | None = None

    def capture(self, sample: torch.Tensor) -> None:
        """Warm up and capture on copies of ``sample``; no parameter or gradient changes."""
        torch.cuda.make_graphed_callables(self.net, (sample.detach().clone(),))
        self.shape = sample.shape

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.shape is not None and self.net.training and x.shape != self.shape:
            return type(self.net).forward(self.net, x)
        return self.net(x)
