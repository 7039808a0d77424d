"""The feature pass on onnxruntime, where it is installed (the ``[export]`` extra) and the backbone runs on a CPU.

On a CPU onnxruntime ran the backbone faster than PyTorch's folded copy (``inference_backbone.py``), with
the same features to float rounding; the graph comes from torch's TorchScript-based exporter, because the dynamo
exporter took longer than the pass saves (docs/speed.md, "The engine's choices"; ``benchmarks/feature_pass.py``).
Any failure (an exporter that is gone, an operator onnxruntime
lacks, features that differ) leaves the pass to PyTorch.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from lightning_app.engine.inference_backbone import same_features


def onnxruntime_extractor(
    backbone: nn.Module, sample: torch.Tensor, threads: int, rtol: float = 1e-3
) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A function of normalised CPU images (B, 3, H, W) to the frozen ``backbone``'s features, run by
    onnxruntime and checked against the backbone on ``sample``; None where onnxruntime cannot do it."""
    try:
        import onnxruntime
    except ImportError:
        return None
    try:
        with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            path = Path(folder) / "backbone.onnx"
            torch.onnx.export(
                backbone,
                (sample.contiguous(),),
                str(path),
                input_names=["images"],
                output_names=["features"],
                dynamic_axes={"images": {0: "batch"}},
                opset_version=18,
                dynamo=False,
            )
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            # no busy-waiting between operators: the DataLoader's decoding workers need those cores
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.log_severity_level = 3
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - any export or session failure: PyTorch runs the pass instead
        return None

    def extract(images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(["features"], {"images": images.contiguous().numpy()})[0])

    with torch.no_grad():
        expected = backbone(sample)
    return extract if same_features(extract(sample), expected, rtol) else None
