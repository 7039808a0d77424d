"""``python -m lightning_app export --ckpt_path best``: a checkpoint as an ONNX model, ready for onnxruntime.

The graph takes float32 pixels in [0, 1], shape (batch, C, H, W) with a dynamic batch, and returns class
probabilities: the data's normalisation and the ``exp`` of the log-probabilities are inside it. The class names
and how an image becomes that input (grey or RGB, the resize and crop, mean and std) are in the model's
metadata. Export reads the checkpoint alone (no data, no Trainer), so it is not a LightningCLI subcommand: its
flags come from ``export_onnx``'s signature.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn
from torchvision.transforms import v2

from lightning_app.errors import ExportError, require
from lightning_app.predictor import Predictor
from lightning_app.runs import checkpoints
from lightning_app.runs.storage import replace_file
from lightning_app.step_progress import status

INPUT, OUTPUT = "pixels", "probabilities"
PREPROCESSING_FORMAT = 1  # the version of the "preprocessing" metadata's layout


def preprocessing(transform: object, channels: int, mean: torch.Tensor, std: torch.Tensor) -> dict:
    """How an image file becomes the graph's input, as plain JSON numbers any program can follow: the colour,
    each resize (``size``: [height, width], or one number for the shorter side, then ``max_size`` for the longer)
    and centre crop in order, and the mean and std the graph applies itself."""
    steps = []
    for step in getattr(transform, "transforms", [transform]):
        if isinstance(step, v2.Resize):
            size = list(step.size) if len(step.size) > 1 else int(step.size[0])
            steps.append(
                {
                    "resize": size,
                    "max_size": step.max_size,
                    "interpolation": getattr(step.interpolation, "value", str(step.interpolation)),
                    "antialias": bool(step.antialias),
                }
            )
        elif isinstance(step, v2.CenterCrop):
            steps.append({"center_crop": [int(side) for side in step.size]})
        else:
            raise ExportError(f"the transform {type(step).__name__} cannot be written as metadata: export it by hand")
    return {
        "format": PREPROCESSING_FORMAT,
        "color": "grey" if channels == 1 else "RGB",
        "steps": steps,
        "scale": "uint8 / 255: pixel values in [0, 1]",
        "mean": [round(float(v), 6) for v in mean.flatten()],
        "std": [round(float(v), 6) for v in std.flatten()],
        "normalization": "inside the graph: (pixels - mean) / std",
    }


class PixelsToProbabilities(nn.Module):
    """The exported graph: ``(pixels - mean) / std`` through the model, then ``exp``."""

    def __init__(self, model: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1).float())
        self.register_buffer("std", std.reshape(1, -1, 1, 1).float())

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model((pixels - self.mean) / self.std).exp()


def default_output(predictor: Predictor) -> Path:
    """``<run folder>/export/<checkpoint name>.onnx``, or beside a checkpoint from outside a run folder."""
    checkpoint = Path(predictor.checkpoint)
    folder = predictor.run_folder / "export" if predictor.run_folder is not None else checkpoint.parent
    return folder / f"{checkpoint.stem}.onnx"


def writable_target(target: Path) -> Path:
    """``target``, checked before the export's seconds are spent: not a folder, and its folder made."""
    if target.is_dir():
        raise ExportError(f"--output {target} is a folder: name the .onnx file to write, e.g. {target / 'model.onnx'}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExportError(
            f"cannot make the folder {target.parent} ({err.strerror or err}): pass --output in a folder you can write"
        ) from None
    return target


def export_onnx(ckpt_path: str = "best", output: str | None = None, opset: int = 18, save_dir: str = "logs") -> Path:
    """Export a checkpoint to ONNX and check it against PyTorch with onnxruntime.

    Args:
        ckpt_path: a .ckpt file, or ``best``/``last`` of the newest run under ``save_dir``.
        output: the .onnx file to write (default: ``<run folder>/export/<checkpoint name>.onnx``).
        opset: the ONNX opset version.
        save_dir: where ``best``/``last`` are looked for.
    """
    onnx = require("onnx", "export", "export")
    path = checkpoints.resolve(ckpt_path, save_dir, None)
    predictor = Predictor.load(path)
    datamodule = predictor.datamodule
    graph = PixelsToProbabilities(predictor.model, datamodule.mean, datamodule.std).eval()
    channels = predictor.channels
    height, width = predictor.input_size
    example = torch.rand(2, channels, height, width)
    target = writable_target(Path(output) if output else default_output(predictor))
    with status(f"export: tracing {type(predictor.model).__name__} with torch's exporter (seconds to a minute)"):
        program = torch.onnx.export(
            graph,
            (example,),
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_shapes={"pixels": {0: torch.export.Dim("batch", min=1, max=4096)}},
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    proto = program.model_proto
    steps = preprocessing(predictor.transform, channels, datamodule.mean, datamodule.std)
    metadata = {
        "class_names": json.dumps(predictor.class_names),
        "input": f"{INPUT}: float32 (batch, {channels}, {height}, {width}), pixel values in [0, 1]",
        "output": f"{OUTPUT}: float32 (batch, {len(predictor.class_names)}), in class_names order",
        "preprocessing": json.dumps(steps),
        "color": steps["color"],
        "mean": json.dumps(steps["mean"]),
        "std": json.dumps(steps["std"]),
        "checkpoint": Path(path).name,  # its name only: the exporting machine's folders are not the model's
        "model": type(predictor.model).__name__,
    }
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    try:
        replace_file(target, lambda handle: handle.write(proto.SerializeToString()))  # whole or not at all
    except OSError as err:
        raise ExportError(
            f"cannot write {target} ({err.strerror or err}): pass --output in a folder you can write"
        ) from None
    with status("export: comparing onnxruntime with PyTorch"):
        difference = compare(target, graph, example)
    print(
        f"exported: {target} ({target.stat().st_size / 1e6:.1f} MB)\n"
        f"  input {metadata['input']}\n  output {metadata['output']}\n"
        f"  classes {', '.join(predictor.class_names)}; preprocessing in the model's metadata\n"
        + (
            f"  onnxruntime vs PyTorch: max abs difference {difference:.2e}"
            if difference is not None
            else "  not checked: pip install onnxruntime to compare with PyTorch"
        ),
        flush=True,
    )
    return target


def compare(path: Path, graph: nn.Module, example: torch.Tensor) -> float | None:
    """The largest absolute difference between onnxruntime's and PyTorch's probabilities (None without
    onnxruntime), on ``example`` and on a batch of another size (the batch axis is dynamic)."""
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for pixels in (example, torch.rand(5, *example.shape[1:])):
        with torch.inference_mode():
            expected = graph(pixels).numpy()
        got = session.run([OUTPUT], {INPUT: pixels.numpy()})[0]
        worst = max(worst, float(abs(got - expected).max()))
    return worst
