"""What the face (CLI, callbacks, predictions) expects of a datamodule and of a model, written down once.

These are structural ``Protocol``s: ``datamodules/`` and ``modules/`` import nothing from here, they only
offer these attributes. The CLI checks the two core ones when it builds a run; the optional ones switch a
feature on where present.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class ClassificationData(Protocol):
    """A LightningDataModule for ``--data``: the loaders yield ``(images, labels)`` and it knows its classes.

    - ``class_names``: one name per class (the model's ``num_classes`` is linked to ``num_classes``);
    - ``normalize(uint8 images)``: what the loaders' batches go through on the device (float, normalised), so
      pictures can show raw images and feed the model the same input;
    - ``sample_images(n)``: up to ``n`` uint8 validation images (N, C, H, W) and labels, for TensorBoard;
    - ``predict_files``: the files ``predict`` read (empty when it predicted the test split), for the CSV.
    """

    class_names: Sequence[str]
    predict_files: Sequence[Path]

    @property
    def num_classes(self) -> int: ...

    def normalize(self, images: torch.Tensor) -> torch.Tensor: ...

    def sample_images(self, n: int) -> tuple[torch.Tensor, torch.Tensor]: ...


@runtime_checkable
class ClassificationModel(Protocol):
    """A LightningModule for ``--model``: ``forward`` returns log-probabilities (batch, num_classes).

    - ``num_classes`` and ``class_names`` are init arguments (the CLI links them from the datamodule) and are
      saved with ``save_hyperparameters()``, so a checkpoint knows its classes;
    - ``test_step`` returns ``{"loss": ..., "preds": predicted classes, "log_probs": (batch, num_classes)}`` (the
      confusion matrix reads ``preds``, ``interpret`` reads ``log_probs``);
    - ``predict_step`` returns class probabilities (batch, num_classes).
    """

    num_classes: int
    class_names: Sequence[str]

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...

    def test_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]: ...


@runtime_checkable
class Inspectable(Protocol):
    """A datamodule that can show its test samples by position in the test loader's order (for ``interpret``):
    ``test_samples(indices)`` returns their uint8 images (N, C, H, W) as the model sees them (before
    normalisation) and a name for each (its file, or ``test[i]``)."""

    def test_samples(self, indices: Sequence[int]) -> tuple[torch.Tensor, list[str]]: ...


@runtime_checkable
class Checkable(Protocol):
    """A datamodule whose every item ``check`` can read: ``inventory()`` lists each split's items as ``fit``
    splits them, with names, labels and the whole images (``datamodules.base.Inventory``)."""

    def inventory(self) -> Any: ...


def offers(obj: object, protocol: type) -> bool:
    """``isinstance(obj, protocol)`` as Python 3.11 answers it, by ``hasattr``: from 3.12 a runtime protocol is
    checked with ``inspect.getattr_static``, which does not see a torch module's submodules (``backbone``)."""
    names = [*getattr(protocol, "__annotations__", {})]
    names += [name for name, value in vars(protocol).items() if callable(value) and not name.startswith("_")]
    return all(hasattr(obj, name) for name in names)


@runtime_checkable
class FeatureExtractor(Protocol):
    """A model whose frozen backbone can run once over the images (for the FeatureCache callback): ``backbone``
    maps normalised images (B, 3, H, W) to features (B, F), and ``forward`` accepts those features too. Staged
    fine-tuning unfreezes the same ``backbone``."""

    backbone: torch.nn.Module
    backbone_frozen: bool
    feature_width: int  # F, what a cached feature table must be as wide as
    # check with offers(model, FeatureExtractor): isinstance misses a module's submodules from Python 3.12


@runtime_checkable
class FeatureCacheable(Protocol):
    """A datamodule whose splits can be read once for a feature pass and then served as features."""

    def feature_inputs(self, split: str, views: int = 1) -> tuple[Any, torch.Tensor, str]: ...

    def use_features(self, split: str, features: torch.Tensor, labels: torch.Tensor, views: int = 1) -> None: ...


@runtime_checkable
class FastTrainable(Protocol):
    """A model the fast path can step: with ``step_engine`` set (``modules.classification.StepEngine``) and
    manual optimization, its ``training_step`` hands each loaded batch to the engine and returns
    ``{"loss": ..., "step_losses": each optimizer step's loss}`` (the NaN check reads ``step_losses``)."""

    step_engine: Any


@runtime_checkable
class GroupedData(Protocol):
    """A datamodule whose loaders of tensors can load ``steps_per_load`` optimizer steps of ``batch_size`` at once
    (the fast path sets ``steps_per_load``; ``batch_size`` stays the optimizer step's)."""

    batch_size: int
    steps_per_load: int


@runtime_checkable
class FastPathSafe(Protocol):
    """A callback that declares whether it works on the fast path, where a training batch holds several
    optimizer steps: ``fast_path_safe`` is true when it acts only per fit, epoch or validation (or, like the app's
    progress bar and NaN check, was written for loaded batches). Any other callback, unless Lightning's and known
    to act per epoch, sends the run to Lightning's per-step path (``engine/fast_path.py``)."""

    fast_path_safe: bool


@runtime_checkable
class NormalizedInput(Protocol):
    """A model that says how its input is normalised (the transfer model: its backbone's mean and std, saved
    with it). The app's datamodules normalise with these instead of their own ``mean``/``std`` wherever they
    feed such a model (``follow_model`` in datamodules/base.py): in a Trainer, in the Predictor, export and the
    demo."""

    input_mean: Sequence[float]
    input_std: Sequence[float]
