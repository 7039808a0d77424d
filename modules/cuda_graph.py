"""A whole optimizer step (forward, loss, backward, Adam) captured once as a CUDA graph and replayed."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def graph_blocker(device: torch.device, world_size: int, precision: str) -> str | None:
    """Why a training step cannot be captured here, or None when it can."""
    if device.type != "cuda":
        return f"it needs a CUDA device, and this run trains on {device.type}"
    if world_size > 1:
        return "it is not supported under DDP here (the gradient all-reduce is not captured)"
    if precision not in ("32-true", "32"):
        return f"it needs 32-bit precision, and this run uses {precision}"
    return None


def add_step_sums(sums: torch.Tensor, loss: torch.Tensor, log_probs: torch.Tensor, y: torch.Tensor) -> None:
    """Add a step's summed loss and its count of correct predictions to ``sums``, in place on the device."""
    sums[0] += loss.detach() * len(y)
    sums[1] += (log_probs.detach().argmax(dim=1) == y).sum()


class GraphedStep:
    """One optimizer step, recorded once and replayed for every batch of the same shape.

    PyTorch's whole-network recipe: the caller has run a few real steps eagerly on a side stream (they create
    the optimizer's state); here the forward, the loss, the backward and ``optimizer.step()`` are recorded.
    The optimizer must be built with ``capturable=True`` and a tensor learning rate, so that a schedule can
    change it between replays. Gradients are allocated inside the graph and overwritten by each replay. A
    replay adds the batch's summed loss and its count of correct predictions to ``sums`` on the device, so
    nothing is read back to the host. Dropout stays random: the CUDA generator advances with each replay.
    """

    def __init__(
        self,
        net: nn.Module,
        criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        optimizer: torch.optim.Optimizer,
        x: torch.Tensor,
        y: torch.Tensor,
        sums: torch.Tensor,
    ) -> None:
        self.x, self.y = x.detach().clone(), y.detach().clone()
        self.graph = torch.cuda.CUDAGraph()
        optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            log_probs = net(self.x)
            loss = criterion(log_probs, self.y)
            loss.backward()
            optimizer.step()
            add_step_sums(sums, loss, log_probs, self.y)
        self.loss = loss.detach()

    def fits(self, x: torch.Tensor) -> bool:
        return x.shape == self.x.shape

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Run the step on ``(x, y)``; returns the loss (a tensor the next replay overwrites)."""
        self.x.copy_(x)
        self.y.copy_(y)
        self.graph.replay()
        return self.loss
