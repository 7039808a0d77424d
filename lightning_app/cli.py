"""The command line: LightningCLI with the lesson's models, datamodules, logging and checkpoints.

Only LightningCLI's public hooks are used: ``init_parser`` (``-c NAME`` for shipped configs),
``add_arguments_to_parser`` (callback sections, defaults, links), ``parse_arguments`` (``--ckpt_path``),
``before_instantiate_classes``, ``after_instantiate_classes``, ``instantiate_trainer`` and ``after_<subcommand>``.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from jsonargparse import Namespace, auto_cli
from lightning.pytorch import LightningDataModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from upath import UPath

import datamodules  # noqa: F401 - loads the datamodules, so --data NAME finds them
import modules  # noqa: F401 - loads the models, so --model NAME finds them
from datamodules import DataError
from lightning_app import checkpoints, demo, export, flag_hints, quiet, run_folders
from lightning_app.app_callbacks import CALLBACKS, CHECKPOINT_IO
from lightning_app.callbacks import monitoring_checkpoint, run_dir
from lightning_app.contracts import ClassificationData, ClassificationModel
from lightning_app.extras import MissingExtra
from lightning_app.from_checkpoint import (
    SavedRun,
    data_settings_for,
    model_flag_conflicts,
    read_saved_run,
)
from lightning_app.host_tuning import keep_large_allocations, skip_nvml_probe_without_driver
from lightning_app.lr_range import fit_command
from lightning_app.safety import TrainingError
from lightning_app.shipped_configs import ShippedConfigFile
from lightning_app.storage import location
from lightning_app.trainer import AppTrainer
from modules import ClassificationModule, ModelError
from modules.backbones import get_backbone
from modules.weights import load_weights, state_mismatch

AUTO = "auto"
DEFAULT_MODEL = "modules.MLP"
DEFAULT_DATA = "datamodules.MNISTDataModule"
SUBCOMMANDS = ("fit", "validate", "test", "predict", "lr_find", "interpret")
# subcommands that read a checkpoint alone (no data, no Trainer), so not LightningCLI's: their flags come from
# these functions' signatures (jsonargparse's auto_cli)
CHECKPOINT_ONLY = {"export": export.export_onnx, "demo": demo.serve}


class LessonCLI(LightningCLI):
    """``fit``/``validate``/``test``/``predict`` for the lesson's models, with TensorBoard and checkpoints.

    ``--ckpt_path FILE|best|last``: the checkpoint decides the model (class and settings) and, unless ``--data``
    names another class, the data class and its settings; the command line still sets where the data is and
    how it is read. ``fit --ckpt_path`` resumes exactly: a ``--model.*`` value that differs from the
    checkpoint's is an error (``--model.init_from`` starts a new run from its weights instead).
    """

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        self.args = args
        self.saved_run: SavedRun | None = None
        self.claimed: UPath | None = None  # the run folder this process created
        self.resumed_folder: UPath | None = None  # the run folder a `fit --ckpt_path` came from
        no_exit = {"exit_on_error": False}  # errors come back as exceptions: main() prints them in one line
        try:
            super().__init__(
                model_class=ClassificationModule,
                trainer_class=AppTrainer,
                subclass_mode_model=True,
                datamodule_class=LightningDataModule,
                subclass_mode_data=True,
                seed_everything_default=42,
                parser_kwargs={**no_exit, **{name: dict(no_exit) for name in SUBCOMMANDS}},
                args=args,
                run=run,
            )
        except BaseException:
            if self.claimed is not None:  # a run that failed before its first checkpoint leaves no folder
                run_folders.drop_if_unused(self.claimed)
            raise

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """Lightning's four, and ``lr_find`` and ``interpret``: their flags come from AppTrainer's methods."""
        return {
            **LightningCLI.subcommands(),
            "lr_find": {"model", "datamodule"},
            "interpret": {"model", "datamodule"},
        }

    # ---- the parser ----------------------------------------------------------------------------------------

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        """Lightning's parser, whose ``-c/--config`` also takes the name of a config in ``lightning_app/configs``."""
        kwargs.setdefault("dump_header", [f"lightning.pytorch=={pl.__version__}"])
        parser = self.parser_class(**kwargs)
        parser.add_argument(
            "-c",
            "--config",
            action=ShippedConfigFile,
            help="A YAML config file, or a shipped config: "
            "mnist_mlp, fashion_classifier, catdog_transfer, catdog_finetune.",
        )
        return parser

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for key, spec in {**CALLBACKS, **CHECKPOINT_IO}.items():
            parser.add_subclass_arguments(spec["base"], key, required=False, fail_untyped=False, help=spec["help"])
        parser.set_defaults(
            {
                **{key: spec["default"] for key, spec in {**CALLBACKS, **CHECKPOINT_IO}.items()},
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

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse the command line on top of what ``--ckpt_path`` decides.

        The layers, lowest first: the parser's defaults, the checkpoint (model class, data class and settings),
        then the user's configs and flags. Lightning then restores the model's settings from the checkpoint;
        a ``--model.*`` the user gave that differs is reported here, before anything runs.
        """
        if isinstance(args, (dict, Namespace)):
            return super().parse_arguments(parser, args)
        flags = read_flags(sys.argv[1:] if args is None else args)
        base = self._checkpoint_layer(flags.subcommand, flags.ckpt_path, flags) if flags.ckpt_path else Namespace()
        if flags.subcommand in SUBCOMMANDS:
            self._default_classes(base, flags.subcommand)
        self.config = parser.parse_args(args, namespace=base)
        subcommand = self.config.get("subcommand")
        if subcommand is None or not self.config[subcommand].get("ckpt_path"):
            return
        section = self.config[subcommand]
        if self.saved_run is None:  # --ckpt_path came from a config file
            base = self._checkpoint_layer(subcommand, section.ckpt_path, flags)
            self.config = parser.parse_args(args, namespace=base)
            section = self.config[subcommand]
        run = self.saved_run
        section.ckpt_path = run.path
        if section.model.class_path != run.model_class:
            raise checkpoints.CheckpointError(
                f"{run.path} was made by {run.model_class}, not {section.model.class_path}: "
                "drop --model (a checkpoint knows its model) or pass a checkpoint of that model"
            )
        explicit = self._explicit(parser, args, subcommand, section)
        self._report_model_flags(subcommand, dict(explicit.model.get("init_args") or {}), run)

    @staticmethod
    def _default_classes(base: Namespace, subcommand: str) -> None:
        """The MLP on MNIST unless something names other classes: a layer under the configs and flags, not the
        parser's defaults, from which jsonargparse would carry the MLP's settings into a ``--model`` chosen
        instead (``--model Classifier`` would train with dropout 0, ``--data CatDogDataModule`` with batch 64)."""
        for key, default in (("model", DEFAULT_MODEL), ("data", DEFAULT_DATA)):
            if f"{subcommand}.{key}" not in base:
                base[f"{subcommand}.{key}"] = Namespace(class_path=default)

    def _checkpoint_layer(self, subcommand: str, ckpt_path: str, flags: argparse.Namespace) -> Namespace:
        """The checkpoint's model class, and its data class and settings, as a config layer under the user's."""
        name = checkpoints.run_name(flags.model, flags.data) if flags.model or flags.data else None
        path = checkpoints.resolve(ckpt_path, "logs", name)
        run = self.saved_run = read_saved_run(
            path, ClassificationModule, LightningDataModule, (flags.model, flags.data)
        )
        base = Namespace()
        base[f"{subcommand}.model"] = Namespace(class_path=run.model_class)
        if run.data_class is not None:
            base[f"{subcommand}.data"] = Namespace(
                class_path=run.data_class, init_args=Namespace(data_settings_for(run))
            )
        return base

    @staticmethod
    def _explicit(parser: LightningArgumentParser, args: Any, subcommand: str, section: Namespace) -> Namespace:
        """Only what the user's configs and flags set (the parsed classes stand in, so ``--model.lr`` parses)."""
        base = Namespace()
        base[f"{subcommand}.model"] = Namespace(class_path=section.model.class_path)
        base[f"{subcommand}.data"] = Namespace(class_path=section.data.class_path)
        return parser.parse_args(args, defaults=False, namespace=base)[subcommand]

    @staticmethod
    def _report_model_flags(subcommand: str, explicit: dict[str, Any], run: SavedRun) -> None:
        conflicts = model_flag_conflicts(explicit, run)
        if not conflicts:
            return
        if subcommand == "fit":
            raise checkpoints.CheckpointError(
                f"{conflicts[0]}: `fit --ckpt_path` resumes the run exactly as it was; to train on from these "
                f"weights with new settings, run `fit --model.init_from {run.path}` with your flags instead"
            )
        if rank_zero_only.rank == 0:
            print(f"note: ignored {'; '.join(conflicts)}: {subcommand} uses the checkpoint's model", file=sys.stderr)

    @staticmethod
    def _tensorboard_args(section: Namespace) -> Namespace | None:
        logger = section.trainer.get("logger")
        if logger is None or isinstance(logger, (bool, list)):
            return None
        if not str(logger.get("class_path", "")).endswith("TensorBoardLogger"):
            return None
        return logger.init_args

    # ---- before and after instantiation --------------------------------------------------------------------

    def _section(self, config: Namespace) -> Namespace:
        return config[self.subcommand] if self.subcommand else config

    def before_instantiate_classes(self) -> None:
        if self.subcommand != "fit":
            quiet.evaluating()
        elif self.saved_run is not None:
            quiet.resuming()
        section = self._section(self.config)
        self._normalise_like_the_backbone(section)
        if self.saved_run is not None:  # the checkpoint holds the backbone's weights: fetch none
            init_args = section.model.get("init_args")
            if init_args is not None and init_args.get("weights") not in (None, "none"):
                init_args.weights = "none"
        self._choose_run_folder(section)

    def _choose_run_folder(self, section: Namespace) -> None:
        """A resumed fit goes on in its own folder; any other run claims a new ``version_N`` (see run_folders)."""
        name = checkpoints.run_name(section.model.class_path, section.data.class_path)
        logger = self._tensorboard_args(section)
        if logger is not None and logger.name == AUTO:
            logger.name = name
        if self.subcommand == "fit" and self.saved_run is not None:
            run = self.resumed_folder = checkpoints.run_folder_of(self.saved_run.path, self.saved_run.state)
            if run is not None and logger is not None and logger.get("version") is None:
                logger.save_dir, logger.name, logger.version = str(run.parent.parent), run.parent.name, run.name
                return
        if rank_zero_only.rank != 0:
            return  # rank 0 alone claims; Lightning broadcasts its log_dir to the other ranks
        if logger is not None and logger.get("version") is None:
            self.claimed = run_folders.claim_version(location(logger.save_dir) / logger.name)
            logger.version = self.claimed.name
        elif logger is None and self.subcommand == "fit" and not section.trainer.get("logger"):
            # without a logger, checkpoints go to default_root_dir/checkpoints: give this run its own
            self.claimed = run_folders.claim_version(location(section.trainer.default_root_dir or ".") / name)
            section.trainer.default_root_dir = str(self.claimed)

    @staticmethod
    def _normalise_like_the_backbone(section: Namespace) -> None:
        """A transfer model's images are normalised with its backbone's mean and std, unless set by the user."""
        backbone = (section.model.get("init_args") or {}).get("backbone")
        data_args = section.data.get("init_args") or {}
        if backbone is None or "mean" not in data_args:
            return
        spec = get_backbone(backbone)
        if data_args.get("mean") is None:
            data_args["mean"] = list(spec.mean)
        if data_args.get("std") is None:
            data_args["std"] = list(spec.std)

    def after_instantiate_classes(self) -> None:
        """Check the contracts, and that the checkpoint fits the model, before anything runs."""
        for value, contract, flag in (
            (self.datamodule, ClassificationData, "--data"),
            (self.model, ClassificationModel, "--model"),
        ):
            if not isinstance(value, contract):
                raise ModelError(
                    f"{flag} {type(value).__name__} does not offer what this app needs ({contract.__name__} in "
                    "lightning_app/contracts.py): see the README's 'Add your own' sections"
                )
        init_from = self.model.hparams.get("init_from")
        if self.subcommand == "fit" and init_from and self.saved_run is None:
            load_weights(self.model, init_from)  # fails here, before a run folder exists; setup() loads them again
        run = self.saved_run
        if run is None:
            return
        saved_classes = run.model_settings.get("num_classes")
        if saved_classes is not None and saved_classes != self.model.num_classes:
            raise checkpoints.CheckpointError(
                f"{run.path} was made for {saved_classes} classes and this data has {self.model.num_classes}: "
                "use the --data it was trained with"
            )
        mismatch = state_mismatch(run.state["state_dict"], self.model)
        if mismatch:
            raise checkpoints.CheckpointError(
                f"{run.path} does not fit {type(self.model).__name__} ({mismatch}): use the --data it was trained with"
            )
        max_epochs = self.trainer.max_epochs
        if self.subcommand == "fit" and max_epochs not in (None, -1) and run.epoch + 1 >= max_epochs:
            raise checkpoints.CheckpointError(
                f"{run.path} has already trained {run.epoch + 1} epoch(s), and --trainer.max_epochs is {max_epochs}: "
                f"pass a larger --trainer.max_epochs to train on"
            )

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """Lightning's trainer with the app's callback sections and checkpoint writer (each may be ``null``)."""
        section = self._section(self.config_init)
        trainer = section["trainer"]
        callbacks = trainer.get("callbacks") or []
        callbacks = list(callbacks) if isinstance(callbacks, list) else [callbacks]
        for key in CALLBACKS:
            callback = section.get(key)
            if callback is None:
                continue
            if isinstance(callback, ProgressBar) and (
                trainer.get("enable_progress_bar") is False or any(isinstance(c, ProgressBar) for c in callbacks)
            ):
                continue  # switched off, or the user brought their own bar
            if isinstance(callback, ModelCheckpoint) and trainer.get("enable_checkpointing") is False:
                continue
            callbacks.append(callback)
        plugins = trainer.get("plugins") or []
        plugins = list(plugins) if isinstance(plugins, list) else [plugins]
        if section.get("checkpoint_io") is not None:
            plugins.append(section["checkpoint_io"])
        self.save_config_kwargs = {"overwrite": False, "config_filename": self._config_filename()}
        return super().instantiate_trainer(**{"callbacks": callbacks, "plugins": plugins or None, **kwargs})

    def _config_filename(self) -> str:
        """``config.yaml``; a resumed run keeps it and writes ``config.resume-K.yaml`` beside it."""
        run = self.resumed_folder
        if run is None or not (run / "config.yaml").exists():
            return "config.yaml"
        k = 1
        while (run / f"config.resume-{k}.yaml").exists():
            k += 1
        return f"config.resume-{k}.yaml"

    # ---- after each subcommand -----------------------------------------------------------------------------

    def after_fit(self) -> None:
        if self.trainer.interrupted:
            return
        ckpt = monitoring_checkpoint(self.trainer)
        best = ckpt.best_model_path if ckpt is not None else ""
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None, verbose=False)
        self._summary(best)

    def after_validate(self) -> None:
        self._summary()

    def after_interpret(self) -> None:
        self._summary()

    def after_lr_find(self) -> None:
        lr = self.trainer.suggested_lr
        if lr is not None and self.trainer.global_rank == 0:
            print(f"train with it: {fit_command(sys.argv[1:] if self.args is None else self.args, lr)}", flush=True)

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


USER_ERRORS = (
    DataError,
    ModelError,
    checkpoints.CheckpointError,
    TrainingError,
    run_folders.RunFolderError,
    argparse.ArgumentError,
    MissingExtra,
    demo.DemoError,
)


def read_flags(argv: list[str]) -> argparse.Namespace:
    """The subcommand and the ``--ckpt_path``, ``--model`` and ``--data`` flags, read (never changed) before parsing.

    ``--ckpt_path`` must be known before the real parse: the checkpoint decides the classes that the other
    flags (``--data.image_size``) belong to. ``--model``/``--data`` narrow ``best``/``last`` to their runs.
    """
    reader = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for flag in ("--ckpt_path", "--model", "--data", "-c", "--config"):
        reader.add_argument(flag)
    flags, rest = reader.parse_known_args(argv)
    flags.subcommand = next((a for a in rest if not a.startswith("-")), None)
    return flags


def check_class_names(flags: argparse.Namespace) -> None:
    """Fail early, in one line, on ``--model NAME``/``--data NAME`` that name no loaded class of this app.

    jsonargparse's own message for an unknown class lists every candidate type over many lines.
    """
    for flag, value, base in (("model", flags.model, ClassificationModule), ("data", flags.data, LightningDataModule)):
        names = sorted(
            c.__name__ for c in flag_hints.subclasses(base) if c.__module__.split(".")[0] in ("modules", "datamodules")
        )
        if value and "." not in value and not value.startswith(("{", "[")) and value not in names:
            raise ModelError(f"unknown {flag} {value!r}: choose one of {', '.join(names)} (or give a full import path)")


def user_error(exc: BaseException) -> BaseException | None:
    """The user-facing error behind ``exc`` (jsonargparse wraps errors raised while instantiating)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, USER_ERRORS):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def one_line(exc: BaseException, subcommand: str | None = None) -> str:
    """The first informative line of an error; jsonargparse's say where to look for more."""
    text = quiet.first_line(exc)
    if isinstance(exc, argparse.ArgumentError):
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = next((line for line in lines[1:] if line.startswith(("- ", "Given value:"))), "")
        text = f"{text} {detail}".strip() if detail and len(text) < 80 else text
        text += f" (see `python -m lightning_app {subcommand or '<subcommand>'} --help`)"
    return text[:400]


def in_a_distributed_job() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def peer_failure(exc: BaseException) -> str:
    """One line for an error inside a job of several processes, where it is nearly always a collective
    operation that lost a process (killed, out of memory, a node gone): each process says so, once, instead of
    ending in a traceback of the collective; ``DLWP_DEBUG=1`` shows the traceback."""
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    first = quiet.first_line(exc, 200)
    return (
        f"process {rank} of {world} stopped ({type(exc).__name__}: {first}); if another process of the job died, "
        "its log says why. The checkpoints of the finished epochs are kept: relaunch the job with "
        "`fit --ckpt_path last` to go on"
    )


def main() -> None:
    """Entry point of ``python -m lightning_app``: known problems end in one line and exit code 2.

    Set ``DLWP_DEBUG=1`` to see the full traceback and the library chatter the CLI otherwise filters.
    """
    quiet.install()
    skip_nvml_probe_without_driver()
    keep_large_allocations()
    try:
        flags = read_flags(sys.argv[1:])
        if flags.subcommand in CHECKPOINT_ONLY:
            args = sys.argv[sys.argv.index(flags.subcommand) + 1 :]
            prog = f"python -m lightning_app {flags.subcommand}"
            auto_cli(CHECKPOINT_ONLY[flags.subcommand], args=args, exit_on_error=False, prog=prog)
            return
        check_class_names(flags)
        LessonCLI()
    except SIGTERMException:  # Lightning stops at the next step and raises SystemExit(None): exit status 0
        print(
            "error: stopped by SIGTERM; the checkpoints of the finished epochs are kept: "
            "go on with `fit --ckpt_path last`",
            file=sys.stderr,
        )
        sys.exit(128 + signal.SIGTERM)  # 143, as a shell reports a process ended by SIGTERM
    except Exception as exc:
        found = user_error(exc)
        if found is None and not os.environ.get(quiet.DEBUG_ENV) and in_a_distributed_job():
            print(f"error: {peer_failure(exc)}", file=sys.stderr)
            sys.exit(1)
        if found is None or os.environ.get(quiet.DEBUG_ENV):
            raise
        flags = read_flags(sys.argv[1:])
        message = one_line(found, flags.subcommand if flags.subcommand in SUBCOMMANDS else None)
        if isinstance(found, argparse.ArgumentError):
            known = flag_hints.sections(flags.model, flags.data, DEFAULT_MODEL, DEFAULT_DATA)
            message = flag_hints.unknown_flag_hint(sys.argv[1:], known, flags.subcommand) or message
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
