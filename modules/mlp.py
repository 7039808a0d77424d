"""The lesson's fully connected networks for 28x28 images."""

from __future__ import annotations

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

from modules.classification import ClassificationModule
from modules.cuda_graph import GraphedForward, graph_blocker
from modules.errors import ModelError


def fully_connected(in_features: int, hidden: list[int], out_features: int, dropout: float) -> nn.Sequential:
    """Flatten, then Linear+ReLU(+Dropout) per hidden size, then Linear and LogSoftmax."""
    layers: list[nn.Module] = [nn.Flatten()]
    for width in hidden:
        layers += [nn.Linear(in_features, width), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_features = width
    layers += [nn.Linear(in_features, out_features), nn.LogSoftmax(dim=1)]
    return nn.Sequential(*layers)


class MLP(ClassificationModule):
    """The MNIST network of the lesson: 784-128-64-10, ReLU, log-softmax output.

    ``cuda_graph: true`` captures the network's forward and backward as CUDA graphs at the first training
    batch (one GPU, 32-bit precision; elsewhere it warns and trains eagerly). It computes the same thing,
    with a fraction of the per-step launch overhead; pair it with the datamodule's ``on_device: true``.
    """

    def __init__(
        self,
        hidden: list[int] | None = None,
        dropout: float = 0.0,
        in_features: int = 784,
        num_classes: int = 10,
        lr: float = 0.003,
        class_names: list[str] | None = None,
        lr_schedule: str = "cosine",
        cuda_graph: bool = False,
    ) -> None:
        super().__init__(num_classes=num_classes, lr=lr, class_names=class_names, lr_schedule=lr_schedule)
        hidden = [128, 64] if hidden is None else list(hidden)
        if any(w < 1 for w in hidden) or not 0 <= dropout < 1:
            raise ModelError(f"hidden sizes must be positive and dropout in [0, 1), got {hidden} and {dropout}")
        self.net = fully_connected(in_features, hidden, num_classes, dropout)
        self.graphed = GraphedForward(self.net) if cuda_graph else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.graphed(x) if self.graphed is not None else self.net(x)

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        """Capture the CUDA graphs from the first training batch, where they can run."""
        if self.graphed is None or self.graphed.shape is not None:
            return
        trainer = self.trainer
        blocker = graph_blocker(self.device, trainer.world_size, str(trainer.precision))
        if blocker:
            rank_zero_warn(f"cuda_graph is off: {blocker}; training eagerly")
            self.graphed = None
            return
        self.graphed.capture(batch[0])
