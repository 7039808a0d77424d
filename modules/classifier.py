"""The lesson's Fashion-MNIST classifier."""

from __future__ import annotations

from modules.mlp import MLP


class Classifier(MLP):
    """784-256-128-64-10 with ReLU and dropout 0.2 after each hidden layer, log-softmax output.

    Trained like the MLP, with the rate rising over the first 5% of the steps, which did better than without it
    on Fashion-MNIST (docs/results.md).
    """

    def __init__(
        self,
        hidden: list[int] | None = None,
        dropout: float = 0.2,
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
            hidden=[256, 128, 64] if hidden is None else hidden,
            dropout=dropout,
            in_features=in_features,
            num_classes=num_classes,
            lr=lr,
            class_names=class_names,
            lr_schedule=lr_schedule,
            init_from=init_from,
            warmup=warmup,
            optimizer=optimizer,
            **retired,
        )
