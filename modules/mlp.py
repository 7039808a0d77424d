"""The lesson's fully connected network for 28x28 images (MNIST): 784-128-64-10, ReLU, log-softmax."""

from __future__ import annotations

from torch import nn

from modules.classification import ClassificationModule
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
    """The MNIST network of the lesson: 784-128-64-10, ReLU, log-softmax output, NLLLoss and Adam.

    Trained by default with the lesson's Adam at 0.003, batch 64, the rate rising over the first 5% of the steps
    before its cosine decay: the warm-up won a sweep of rate, warm-up, dropout, label smoothing and weight decay
    (docs/results.md).
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
        init_from: str | None = None,
        warmup: float = 0.05,
        optimizer: str = "adam",
        **retired: object,
    ) -> None:
        super().__init__(
            num_classes=num_classes,
            lr=lr,
            class_names=class_names,
            lr_schedule=lr_schedule,
            init_from=init_from,
            warmup=warmup,
            optimizer=optimizer,
            **retired,
        )
        hidden = [128, 64] if hidden is None else list(hidden)
        if any(w < 1 for w in hidden) or not 0 <= dropout < 1:
            raise ModelError(f"hidden sizes must be positive and dropout in [0, 1), got {hidden} and {dropout}")
        self.net = fully_connected(in_features, hidden, num_classes, dropout)
