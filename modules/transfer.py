"""The lesson's transfer learning: a frozen pretrained backbone and a new classifier head."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from modules.backbones import BATCH_NORMS, build_backbone, get_backbone, input_normalization
from modules.classification import ClassificationModule
from modules.errors import ModelError


class TransferModel(ClassificationModule):
    """A frozen ImageNet backbone and the lesson's head: Linear(features, 256), ReLU, Dropout(0.2),
    Linear(256, num_classes), LogSoftmax. Only the head trains (Adam, lr 0.003), unless a fine-tuning
    callback unfreezes the backbone later in the run.

    The backbone is frozen twice over: its parameters need no gradient, and it stays in eval mode so its
    BatchNorm statistics do not move. ``forward`` also accepts the backbone's features (B, features),
    computed once beforehand, which is how the app's feature cache trains the head.

    Args:
        backbone: densenet121 (the lesson's), resnet18, resnet50 or efficientnet_lite0.
        weights: ``imagenet``, ``none`` (random init) or a local state_dict file.
        hidden: width of the head's hidden layer.
        dropout: dropout of the head.
        channels_last: on a GPU, run the backbone in channels_last memory format.
        input_mean: the per-channel mean the backbone's inputs are normalised with; None takes the backbone's own.
        input_std: the per-channel std, as ``input_mean``. Both are saved with the model (its checkpoint holds the
            numbers), and the app's datamodules normalise with them (the contract ``NormalizedInput`` in
            lightning_app/contracts.py): the command line, a plain Trainer, the Predictor,
            export and the demo feed the backbone the same input.
    """

    def __init__(
        self,
        backbone: str = "densenet121",
        weights: str = "imagenet",
        hidden: int = 256,
        dropout: float = 0.2,
        channels_last: bool = True,
        num_classes: int = 2,
        lr: float = 0.003,
        class_names: list[str] | None = None,
        lr_schedule: str = "cosine",
        init_from: str | None = None,
        optimizer: str = "adam",
        input_mean: list[float] | None = None,
        input_std: list[float] | None = None,
        **retired: object,
    ) -> None:
        spec = get_backbone(backbone)
        # resolved before the base saves the hyperparameters, so the checkpoint and hparams.yaml hold the numbers
        input_mean, input_std = input_normalization(backbone, input_mean, input_std)
        if len(input_mean) != 3 or len(input_std) != 3 or min(input_std) <= 0:
            raise ModelError(
                f"input_mean and input_std must be 3 numbers each (std above 0), got {input_mean}, {input_std}"
            )
        super().__init__(
            num_classes=num_classes,
            lr=lr,
            class_names=class_names,
            lr_schedule=lr_schedule,
            init_from=init_from,
            optimizer=optimizer,
            **retired,
        )
        self.input_mean, self.input_std = input_mean, input_std
        self.hparams.update(input_mean=input_mean, input_std=input_std)  # also where a CLI passed its own hparams
        self.backbone = build_backbone(backbone, weights)
        self.backbone.requires_grad_(False)
        self.backbone.eval()
        self.channels_last = channels_last
        self.head = nn.Sequential(
            nn.Linear(spec.features, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
            nn.LogSoftmax(dim=1),
        )

    @property
    def feature_width(self) -> int:
        """The width of the backbone's features, which the head takes."""
        return self.head[0].in_features

    @property
    def backbone_frozen(self) -> bool:
        return not any(p.requires_grad for p in self.backbone.parameters())

    def train(self, mode: bool = True) -> TransferModel:
        """Like ``nn.Module.train``, but a frozen backbone stays in eval mode, and so does each BatchNorm layer
        whose weights are frozen when the backbone is fine-tuned: its ImageNet statistics stay fixed."""
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()
        elif mode:
            for layer in self.backbone.modules():
                if isinstance(layer, BATCH_NORMS) and not any(p.requires_grad for p in layer.parameters()):
                    layer.eval()
        return self

    def extract_features(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone features (B, features) of normalised images (B, 3, H, W)."""
        if self.channels_last and images.is_cuda:
            images = images.contiguous(memory_format=torch.channels_last)
        if self.backbone_frozen:
            with torch.no_grad():
                return self.backbone(images)
        return self.backbone(images)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities from images (B, 3, H, W) or from cached features (B, features)."""
        features = x if x.ndim == 2 else self.extract_features(x)
        return self.head(features)

    def on_fit_start(self) -> None:
        if self.channels_last and self.device.type == "cuda":
            self.backbone.to(memory_format=torch.channels_last)

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        return iter(self.head.parameters())
