"""The command line: LightningCLI with the lesson's models, datamodules, logging and checkpoints."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from lightning.pytorch import LightningDataModule
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.plugins.io import CheckpointIO

import datamodules  # noqa: F401 - registers the datamodules for --data NAME
import modules  # noqa: F401 - registers the models for --model NAME
from datamodules import DataError
from lightning_app import checkpoints
from lightning_app.callbacks import EpochTimer, MetricsJSON, last_checkpoint, monitoring_checkpoint, run_dir
from lightning_app.predictions import PredictionWriter
from lightning_app.progress import ThrottledProgressBar
from lightning_app.safety import AtomicCheckpointIO, StopOnNonFiniteLoss, TrainingError
from lightning_app.tensorboard import LearningRate, TensorBoardViews
from modules import ClassificationModule, ModelError
from modules.backbones import get_backbone

CONFIG_DIR = Path(__file__).parent / "configs"
AUTO = "auto"
DEBUG_ENV = "DLWP_DEBUG"


class LessonCLI(LightningCLI):
    """``fit``/``validate``/``test``/``predict`` for the lesson's models, with TensorBoard and checkpoints."""

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        if args is not None and args == sys.argv[1:]:
            args = None  # parse sys.argv itself (LightningCLI warns when given both)
        super().__init__(
            model_class=ClassificationModule,
            subclass_mode_model=True,
            datamodule_class=LightningDataModule,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            seed_everything_default=42,
            trainer_defaults={
                "callbacks": [
                    MetricsJSON(),
                    last_checkpoint(),
                    TensorBoardViews(),
                    LearningRate(),
                    PredictionWriter(),
                    EpochTimer(),
                    StopOnNonFiniteLoss(),
                ]
            },
            args=args,
            run=run,
        )

    def _instantiate_trainer(self, config: dict, callbacks: list):
        """Lightning's trainer, with a progress bar that redraws by the clock and atomic checkpoint writes,
        unless the user picks their own."""
        if config.get("enable_progress_bar") is not False and not any(
            isinstance(cb, ProgressBar) for cb in [*(config.get("callbacks") or []), *callbacks]
        ):
            callbacks = [*callbacks, ThrottledProgressBar()]
        plugins = config.get("plugins") or []
        plugins = plugins if isinstance(plugins, list) else [plugins]
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            config = {**config, "plugins": [*plugins, AtomicCheckpointIO()]}
        return super()._instantiate_trainer(config, callbacks)

    def _parse_ckpt_path(self) -> None:
        """Lightning restores the model's hyperparameters from ``--ckpt_path``; a pretrained backbone is then
        not fetched again, since the checkpoint holds its weights."""
        super()._parse_ckpt_path()
        if not self.config.get("subcommand") or not self._section().get("ckpt_path"):
            return
        init_args = self._section().model.get("init_args")
        if init_args is not None and init_args.get("weights") not in (None, "none"):
            init_args.weights = "none"

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        except RuntimeError as err:
            if "loading state_dict" not in str(err):
                raise
            detail = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), "")
            raise checkpoints.CheckpointError(
                f"{self._section().get('ckpt_path')} was made for another model or number of classes "
                f"({detail[:160]}): use the --model and --data it was trained with"
            ) from err

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "model": {"class_path": "modules.MLP"},
                "data": {"class_path": "datamodules.MNISTDataModule"},
                "checkpoint.monitor": "val/acc",
                "checkpoint.mode": "max",
                "checkpoint.filename": "epoch={epoch}-val_acc={val/acc:.4f}",
                "checkpoint.auto_insert_metric_name": False,
                "trainer.max_epochs": 5,
                "trainer.default_root_dir": "logs",  # where checkpoints go even with --trainer.logger false
                "trainer.logger": {
                    "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                    "init_args": {"save_dir": "logs", "name": AUTO, "default_hp_metric": False},
                },
            }
        )
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")
        parser.link_arguments("data.class_names", "model.init_args.class_names", apply_on="instantiate")

    # ---- configuration fixes that need the parsed config -------------------------------------------------

    def _section(self):
        return self.config[self.config.subcommand] if self.config.get("subcommand") else self.config

    def _logger_args(self):
        logger = self._section().trainer.get("logger")
        if logger is None or isinstance(logger, (bool, list)):
            return None
        if not str(logger.get("class_path", "")).endswith("TensorBoardLogger"):
            return None
        return logger.init_args

    def _run_name(self) -> str:
        section = self._section()
        return checkpoints.run_name(section.model.class_path, section.data.class_path)

    def before_instantiate_classes(self) -> None:
        self._normalise_like_the_backbone()
        init_args = self._logger_args()
        if init_args is None:
            return
        if init_args.name == AUTO:
            init_args.name = self._run_name()
        ckpt_path = self._section().get("ckpt_path")
        if self.config.get("subcommand") == "fit" and ckpt_path and init_args.get("version") is None:
            run = self._run_folder_of(ckpt_path)
            if run is not None:  # resume into the run the checkpoint came from
                init_args.save_dir, init_args.name, init_args.version = (
                    str(run.parent.parent),
                    run.parent.name,
                    run.name,
                )

    def _normalise_like_the_backbone(self) -> None:
        """A transfer model's images are normalised with its backbone's mean and std, unless set by the user."""
        section = self._section()
        backbone = (section.model.get("init_args") or {}).get("backbone")
        data_args = section.data.get("init_args") or {}
        if backbone is None or "mean" not in data_args:
            return
        spec = get_backbone(backbone)
        if data_args.get("mean") is None:
            data_args["mean"] = list(spec.mean)
        if data_args.get("std") is None:
            data_args["std"] = list(spec.std)

    @staticmethod
    def _run_folder_of(ckpt_path: str) -> Path | None:
        """``<save_dir>/<name>/<version>`` of a checkpoint written there by ModelCheckpoint, spelled as it was then."""
        state = checkpoints.load_checkpoint(ckpt_path)
        for key, value in state.get("callbacks", {}).items():
            dirpath = value.get("dirpath") if key.startswith("ModelCheckpoint") and isinstance(value, dict) else None
            if dirpath and os.path.realpath(dirpath) == os.path.realpath(Path(ckpt_path).parent):
                run = Path(dirpath).parent
                if Path(dirpath).name == "checkpoints" and (run / "hparams.yaml").exists():
                    return run
        return None

    # ---- after each subcommand ---------------------------------------------------------------------------

    def after_fit(self) -> None:
        if self.trainer.interrupted:
            return
        ckpt = monitoring_checkpoint(self.trainer)
        best = ckpt.best_model_path if ckpt is not None else ""
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None, verbose=False)
        self._summary(best)

    def after_validate(self) -> None:
        self._summary()

    def after_test(self) -> None:
        self._summary()

    def _summary(self, best: str = "") -> None:
        if self.trainer.global_rank != 0:
            return
        metrics = {k: float(v) for k, v in self.trainer.callback_metrics.items()}
        lines = []
        stage = "test" if "test/acc" in metrics else "val"
        if f"{stage}/acc" in metrics:
            lines.append(f"{stage}/acc: {metrics[f'{stage}/acc']:.4f}  ({stage}/loss {metrics[f'{stage}/loss']:.4f})")
        ckpt = monitoring_checkpoint(self.trainer)
        if best and ckpt is not None and ckpt.best_model_score is not None:
            epoch = re.search(r"epoch=(\d+)", Path(best).name)
            at = f" at epoch {epoch.group(1)}" if epoch else ""
            lines.append(f"best {ckpt.monitor}: {float(ckpt.best_model_score):.4f}{at}")
        if best:
            lines.append(f"best checkpoint: {best}")
        folder = run_dir(self.trainer)
        if folder is not None:
            lines.append(f"run folder: {folder}")
            lines.append(f"TensorBoard: tensorboard --logdir {folder.parent} --host 127.0.0.1")
        print("\n".join(lines), flush=True)


USER_ERRORS = (DataError, ModelError, checkpoints.CheckpointError, TrainingError)


def shipped_configs(args: list[str]) -> list[str]:
    """Let ``-c NAME`` name a config shipped in ``lightning_app/configs`` (``mnist_mlp``, ...)."""
    out = list(args)
    for i, arg in enumerate(out[:-1]):
        if arg in ("-c", "--config") and not Path(out[i + 1]).exists():
            shipped = CONFIG_DIR / f"{Path(out[i + 1]).stem}.yaml"
            if shipped.is_file():
                out[i + 1] = str(shipped)
    return out


def check_class_names(args: list[str]) -> None:
    """Fail early, in one line, on ``--model NAME``/``--data NAME`` that name no class of this app."""
    choices = {"--model": modules.MODELS, "--data": datamodules.DATAMODULES}
    for key in choices:
        value = (checkpoints.flag_value(args, key) or (0, ""))[1]
        if value and "." not in value and not value.startswith(("{", "[")) and value not in choices[key]:
            known = ", ".join(choices[key])
            raise ModelError(f"unknown {key[2:]} {value!r}: choose one of {known} (or give a full import path)")


def user_error(exc: BaseException) -> BaseException | None:
    """The user-facing error behind ``exc`` (jsonargparse wraps errors raised while instantiating)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, USER_ERRORS):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def main(args: list[str] | None = None) -> None:
    """Entry point of ``python -m lightning_app``: known problems end in one line and exit code 2.

    Set ``DLWP_DEBUG=1`` to see the full traceback instead.
    """
    argv = shipped_configs(sys.argv[1:] if args is None else args)
    try:
        check_class_names(argv)
        argv = checkpoints.with_checkpoint(argv)
        LessonCLI(args=argv)
    except Exception as exc:
        found = user_error(exc)
        if found is None or os.environ.get(DEBUG_ENV):
            raise
        print(f"error: {found}", file=sys.stderr)
        sys.exit(2)
