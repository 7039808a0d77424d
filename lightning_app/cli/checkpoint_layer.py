"""``--ckpt_path`` as one config layer: resolved once, read once, checked before anything runs.

The layers of a run's config, lowest first: the parser's defaults, the checkpoint (its model class and settings,
its data class and settings), then the user's configs and flags. ``fit --ckpt_path`` resumes exactly, so a
``--model.*`` that differs from the checkpoint's is an error there (``--model.init_from`` starts a new run from
the weights instead); ``validate``/``test``/``predict`` say they ignore it and use the checkpoint's model.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_only

from lightning_app.cli.argv import Flags
from lightning_app.errors import CheckpointError
from lightning_app.runs import checkpoints
from lightning_app.runs.saved_run import LINKED_KEYS, SavedRun, data_settings_for, loaded_class, read_saved_run
from modules import ClassificationModule
from modules.weights import state_mismatch


class CheckpointLayer:
    """The checkpoint a run starts from, as the config layer under the user's (see the module's docstring)."""

    def __init__(self, ckpt_path: str, save_dir: str, flags: Flags) -> None:
        name = checkpoints.run_name(flags.model, flags.data) if flags.model or flags.data else None
        self.looked_in = str(save_dir) if ckpt_path in checkpoints.ALIASES else None  # where best/last were found
        self.path = checkpoints.resolve(ckpt_path, save_dir, name)
        self.run: SavedRun = read_saved_run(
            self.path, ClassificationModule, LightningDataModule, (flags.model, flags.data)
        )

    def model_settings(self) -> dict[str, Any]:
        """The checkpoint's model settings that its class takes by name (linked ones come from the data)."""
        cls = loaded_class(self.run.model_class, ClassificationModule)
        names = {
            p.name
            for p in inspect.signature(cls.__init__).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
        return {k: v for k, v in self.run.model_settings.items() if k in names and k not in LINKED_KEYS}

    def namespace(self, subcommand: str) -> Namespace:
        base = Namespace()
        base[f"{subcommand}.model"] = Namespace(
            class_path=self.run.model_class, init_args=Namespace(self.model_settings())
        )
        if self.run.data_class is not None:
            settings = data_settings_for(self.run)
            data_class = loaded_class(self.run.data_class, LightningDataModule)
            classes = self.run.model_settings.get("class_names")
            if classes and "known_classes" in inspect.signature(data_class.__init__).parameters:
                settings["known_classes"] = list(classes)  # predict on one's own files needs no training photos
            base[f"{subcommand}.data"] = Namespace(class_path=self.run.data_class, init_args=Namespace(settings))
        return base

    def check_flags(self, subcommand: str, section: Namespace) -> None:
        """The model's class and settings after the user's layer: a change is an error for ``fit``; elsewhere
        the checkpoint's settings are put back, with a note."""
        section.ckpt_path = self.path
        if section.model.class_path != self.run.model_class:
            raise CheckpointError(
                f"{self.path} was made by {self.run.model_class}, not {section.model.class_path}: "
                "drop --model (a checkpoint knows its model) or pass a checkpoint of that model"
            )
        init_args = section.model.get("init_args") or Namespace()
        saved = self.model_settings()
        conflicts = [
            f"--model.{key} {init_args[key]!r} (the checkpoint has {value!r})"
            for key, value in saved.items()
            if key != "weights" and key in init_args and init_args[key] != value  # weights: held by the checkpoint
        ]
        if not conflicts:
            return
        if subcommand == "fit":
            raise CheckpointError(
                f"{conflicts[0]}: `fit --ckpt_path` resumes the run exactly as it was; to train on from these "
                f"weights with new settings, run `fit --model.init_from {self.path}` with your flags instead"
            )
        for key, value in saved.items():
            init_args[key] = value
        if rank_zero_only.rank == 0:
            print(f"note: ignored {'; '.join(conflicts)}: {subcommand} uses the checkpoint's model", file=sys.stderr)

    def check_instantiated(
        self, subcommand: str, model: LightningModule, trainer: Trainer, datamodule: object = None
    ) -> None:
        """The checkpoint fits the model the data made, and a resume has epochs left to train."""
        run = self.run
        saved_classes = run.model_settings.get("num_classes")
        if saved_classes is not None and saved_classes != model.num_classes:
            same_class = run.data_class is not None and loaded_class(run.data_class, object) is type(datamodule)
            where = run.data_settings.get("data_dir")
            hint = (
                f"point --data.data_dir at the data it was trained on ({where})"
                if where and same_class
                else "use the --data it was trained with"
            )
            raise CheckpointError(
                f"{run.path} was made for {saved_classes} classes and this data has {model.num_classes}: {hint}"
            )
        mismatch = state_mismatch(run.state["state_dict"], model)
        if mismatch:
            raise CheckpointError(
                f"{run.path} does not fit {type(model).__name__} ({mismatch}): use the --data it was trained with"
            )
        max_epochs = trainer.max_epochs
        if subcommand == "fit" and max_epochs not in (None, -1) and run.epoch + 1 >= max_epochs:
            raise CheckpointError(
                f"{run.path} has already trained {run.epoch + 1} epoch(s), and --trainer.max_epochs is {max_epochs}: "
                f"pass a larger --trainer.max_epochs to train on"
            )
