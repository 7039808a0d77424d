"""A faster copy of a frozen backbone for the one feature pass: BatchNorm folded into the convolutions before
it (torch's ``fuse_conv_bn_eval``; the pairs are found by running a sample), channels_last memory. The same
function of the images (float32; differences at float rounding).

BatchNorm makes its own pass over every activation map; folded into the convolution it costs nothing, and
channels_last suits the CPU's convolutions (measured in docs/speed.md, "The engine's choices";
``benchmarks/feature_pass.py``).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> int:
    """TensorFlow's "SAME" padding in total along one side of ``size`` (timm's ``get_same_padding``)."""
    return max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)


class SamePadConv2d(nn.Conv2d):
    """A "SAME"-padded convolution (as timm's Conv2dSame) whose padding writes only the border: ``F.pad``
    fills the whole padded map with zeros first, 11% of EfficientNet-Lite0's time here."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        ph = same_padding(h, self.kernel_size[0], self.stride[0], self.dilation[0])
        pw = same_padding(w, self.kernel_size[1], self.stride[1], self.dilation[1])
        top, left = ph // 2, pw // 2
        out = torch.empty((n, c, h + ph, w + pw), dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
        out[:, :, top : top + h, left : left + w] = x
        out[:, :, :top].zero_()
        out[:, :, top + h :].zero_()
        out[:, :, :, :left].zero_()
        out[:, :, :, left + w :].zero_()
        return F.conv2d(out, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _replace(model: nn.Module, modules: dict[str, nn.Module], name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(modules[parent] if parent else model, child, new)


def _after_norm(bn: nn.BatchNorm2d) -> nn.Module:
    """What is left of a norm layer once folded: timm's BatchNormAct2d keeps its dropout and activation."""
    rest = [m for m in (getattr(bn, "drop", None), getattr(bn, "act", None)) if isinstance(m, nn.Module)]
    return nn.Sequential(*rest) if rest else nn.Identity()


def conv_norm_pairs(model: nn.Module, sample: torch.Tensor) -> list[tuple[str, str]]:
    """(conv, norm) module names where the norm layer's input is exactly that convolution's output, found by
    running ``sample`` through the model."""
    names = {module: name for name, module in model.named_modules()}
    made_by: dict[int, tuple[nn.Module, torch.Tensor]] = {}  # the outputs kept alive, so their ids stay theirs
    pairs: list[tuple[str, str]] = []

    def after_conv(module, inputs, output):
        made_by[id(output)] = (module, output)

    def before_norm(module, inputs):
        conv, output = made_by.get(id(inputs[0]), (None, None))
        if output is inputs[0]:
            pairs.append((names[conv], names[module]))

    hooks = [
        m.register_forward_hook(after_conv) if isinstance(m, nn.Conv2d) else m.register_forward_pre_hook(before_norm)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))
    ]
    try:
        with torch.no_grad():
            model(sample)
    finally:
        for hook in hooks:
            hook.remove()
    return pairs


def inference_copy(backbone: nn.Module, sample: torch.Tensor, rtol: float = 1e-3) -> nn.Module:
    """A copy of the frozen ``backbone`` in eval mode with BatchNorm folded and channels_last memory, checked
    against the original on ``sample`` (the original itself is returned if the copy would differ)."""
    model = copy.deepcopy(backbone).eval().requires_grad_(False)
    modules = dict(model.named_modules())
    pairs = conv_norm_pairs(model, sample)
    convs = [conv for conv, _ in pairs]
    with torch.no_grad():
        for conv_name, norm_name in pairs:
            if convs.count(conv_name) == 1:  # a convolution feeding one norm layer only
                _replace(model, modules, conv_name, fuse_conv_bn_eval(modules[conv_name], modules[norm_name]))
                _replace(model, modules, norm_name, _after_norm(modules[norm_name]))
        for module in model.modules():
            if type(module).__name__ == "Conv2dSame":  # timm's, as in the tf_ EfficientNets
                module.__class__ = SamePadConv2d  # the same parameters, a cheaper forward
        model = model.to(memory_format=torch.channels_last)
        expected = backbone(sample)
        got = model(sample.contiguous(memory_format=torch.channels_last))
    return model if same_features(got, expected, rtol) else backbone


def same_features(got: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-3) -> bool:
    """Equal to float rounding: each value within ``rtol`` of the expected one, or of its largest magnitude."""
    if got.shape != expected.shape:
        return False
    return torch.allclose(got, expected, rtol=rtol, atol=rtol * float(expected.abs().max()))
