"""One import for a script or notebook: ``Predictor.load("best")("photo.jpg")`` gives class probabilities.

The same numbers as ``python -m lightning_app predict`` writes: the checkpoint's own datamodule class reads,
resizes and normalises the image (its ``predict_reader``, ``predict_transform`` and ``normalize``), and the model
returns ``exp(log-probabilities)``, as its ``predict_step`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import torch
from lightning.pytorch import LightningDataModule
from upath import UPath

import datamodules  # noqa: F401 - loads the app's datamodules, the only data classes a checkpoint may name
from datamodules.image_io import check_size
from lightning_app.errors import first_line
from lightning_app.runs import checkpoints
from lightning_app.runs.saved_run import data_settings_for, loaded_class, read_saved_run
from modules import ClassificationModule

Image = str | Path | BinaryIO | torch.Tensor


class Predictor:
    """A trained model and its data's preprocessing, as a function of image files (or uint8 image tensors).

    Args:
        model: a trained ClassificationModule (put in eval mode here).
        datamodule: the datamodule class it was trained with, for its preprocessing (it reads no data).
        device: where the model runs.
    """

    checkpoint: str | None = None  # the file Predictor.load read
    run_folder: UPath | None = None  # the run folder it was written in, when it is one

    def __init__(self, model: ClassificationModule, datamodule: LightningDataModule, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.datamodule = datamodule
        datamodule.follow_model(model)  # a transfer model's own normalisation (contracts.NormalizedInput)
        self.class_names = list(model.class_names)
        self.read = datamodule.predict_reader()
        self.transform = datamodule.predict_transform()

    @classmethod
    def load(cls, ckpt_path: str = "best", save_dir: str = "logs", device: str = "cpu") -> Predictor:
        """A checkpoint of this app (a .ckpt file, or ``best``/``last`` of the newest run under ``save_dir``),
        read as data: ``weights_only=True``, and only classes this app has loaded."""
        path = checkpoints.resolve(ckpt_path, save_dir, None)
        run = read_saved_run(path, ClassificationModule, LightningDataModule)
        if run.data_class is None:
            raise checkpoints.CheckpointError(
                f"{path} does not say which data it was trained on: build Predictor(model, datamodule) yourself"
            )
        settings = dict(run.model_settings)
        if settings.get("weights") not in (None, "none"):
            settings["weights"] = "none"  # the checkpoint holds the backbone's weights: fetch none
        model = loaded_class(run.model_class, ClassificationModule)(**settings)
        try:
            model.load_state_dict(run.state["state_dict"])
        except RuntimeError as err:  # the weights' shapes or names are not the settings' network
            raise checkpoints.CheckpointError(
                f"{path} holds weights that do not fit its own settings ({first_line(err, 150)}): pass a checkpoint "
                "written by this app's fit"
            ) from None
        datamodule = loaded_class(run.data_class, LightningDataModule)(**data_settings_for(run))
        predictor = cls(model, datamodule, device)
        predictor.checkpoint, predictor.run_folder = path, checkpoints.run_folder_of(path, run.state)
        return predictor

    @property
    def channels(self) -> int:
        """1 for grey inputs (the 28x28 data sets), 3 for RGB."""
        return int(self.datamodule.mean.numel())

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the network's input, as the transform makes it."""
        blank = torch.zeros(self.channels, 64, 64, dtype=torch.uint8)
        height, width = self.transform(blank).shape[-2:]
        return int(height), int(width)

    def inputs(self, images: Sequence[Image]) -> torch.Tensor:
        """The uint8 network inputs (N, C, H, W), before normalisation: image files (paths or open binary files)
        read as ``predict`` reads them, and transformed; uint8 (C, H, W) tensors transformed."""
        batch = []
        for image in images:
            if isinstance(image, torch.Tensor):
                pixels = image
                check_size("the image tensor", pixels.shape[-1], pixels.shape[-2], self.datamodule.max_pixels)
            else:
                pixels = self.read(image if hasattr(image, "read") else Path(image))
            batch.append(self.transform(pixels))
        return torch.stack(batch)

    @torch.inference_mode()
    def probabilities(self, images: Sequence[Image]) -> torch.Tensor:
        """Class probabilities (N, num_classes) of images (see :meth:`inputs`), or of a uint8 (N, C, H, W) batch
        that :meth:`inputs` made."""
        batch = images if isinstance(images, torch.Tensor) and images.ndim == 4 else self.inputs(images)
        x = self.datamodule.normalize(batch.to(self.device))
        return self.model(x).exp().float().cpu()

    def __call__(self, image: Image) -> dict[str, float]:
        """``{class name: probability}`` for one image file or uint8 (C, H, W) tensor."""
        probs = self.probabilities([image])[0]
        return dict(zip(self.class_names, probs.tolist(), strict=True))
