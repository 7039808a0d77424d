"""LightningCLI with the lesson's models, datamodules, logging and checkpoints.

Only LightningCLI's public hooks are used: ``init_parser`` (``-c NAME`` for shipped configs),
``add_arguments_to_parser`` (callback sections, defaults, links), ``parse_arguments`` (``--ckpt_path``, see
checkpoint_layer.py), ``before_instantiate_classes``, ``after_instantiate_classes``, ``instantiate_trainer`` and
``after_<subcommand>``.
"""

from __future__ import annotations

import sys
from typing import Any

import lightning.pytorch as pl
from jsonargparse import Namespace
from lightning.pytorch import LightningDataModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

import datamodules  # noqa: F401 - loads the datamodules, so --data NAME finds them
import modules  # noqa: F401 - loads the models, so --model NAME finds them
from lightning_app.cli import bounded_yaml, quick_exit, terminal
from lightning_app.cli.argv import Flags, read_flags
from lightning_app.cli.checkpoint_layer import CheckpointLayer
from lightning_app.cli.run_folder_choice import AUTO, RunFolder, choose_run_folder
from lightning_app.cli.sections import CALLBACKS, CHECKPOINT_IO
from lightning_app.cli.shipped_configs import ShippedConfigFile
from lightning_app.cli.subcommands import SUBCOMMANDS, TRAINER_SUBCOMMANDS, program
from lightning_app.cli.summary import summary
from lightning_app.contracts import ClassificationData, ClassificationModel
from lightning_app.runs import run_folders
from lightning_app.runs.checkpoints import monitoring_checkpoint
from lightning_app.runs.run_folders import RUNS
from lightning_app.toolkit.app_trainer import AppTrainer
from lightning_app.toolkit.lr_find import fit_command
from modules import ClassificationModule, ModelError
from modules.backbones import input_normalization
from modules.weights import load_weights

DEFAULT_MODEL = "modules.MLP"
DEFAULT_DATA = "datamodules.MNISTDataModule"


def class_paths(value: Any) -> list[str]:
    """Every ``class_path`` in a config (callbacks, loggers, plugins, the model and data)."""
    if isinstance(value, Namespace):
        value = value.as_dict()
    if isinstance(value, dict):
        own = [value["class_path"]] if isinstance(value.get("class_path"), str) else []
        return own + [path for item in value.values() for path in class_paths(item)]
    if isinstance(value, list):
        return [path for item in value for path in class_paths(item)]
    return []


def save_folder(section: Namespace) -> str:
    """Where this run's config puts runs: the TensorBoard logger's ``save_dir``, else ``default_root_dir``."""
    logger = section.trainer.get("logger")
    if isinstance(logger, Namespace) and (logger.get("init_args") or {}).get("save_dir"):
        return str(logger.init_args.save_dir)
    return str(section.trainer.get("default_root_dir") or RUNS)


class LessonCLI(LightningCLI):
    """``fit``/``validate``/``test``/``predict`` for the lesson's models, with TensorBoard and checkpoints.

    ``--ckpt_path FILE|best|last``: the checkpoint decides the model (class and settings) and, unless ``--data``
    names another class, the data class and its settings; the command line still sets where the data is and
    how it is read. ``fit --ckpt_path`` resumes exactly: a ``--model.*`` value that differs from the
    checkpoint's is an error (``--model.init_from`` starts a new run from its weights instead).
    """

    def __init__(self, args: list[str] | None = None, run: bool = True, flags: Flags | None = None) -> None:
        self.args = args
        self.flags = flags if flags is not None else read_flags(sys.argv[1:] if args is None else args)
        self.layer: CheckpointLayer | None = None  # the checkpoint of --ckpt_path
        self.held_ckpt_path: str | None = None  # its path, set back in the config before instantiation
        self.run_folder = RunFolder()  # chosen before instantiation (cli/run_folder_choice.py)
        # errors come back as exceptions (main() prints them in one line); YAML is read with bounded aliases
        no_exit = {"exit_on_error": False, "parser_mode": bounded_yaml.MODE}
        try:
            super().__init__(
                model_class=ClassificationModule,
                trainer_class=AppTrainer,
                subclass_mode_model=True,
                datamodule_class=LightningDataModule,
                subclass_mode_data=True,
                seed_everything_default=42,
                parser_kwargs={**no_exit, "prog": program(), **{name: dict(no_exit) for name in self.subcommands()}},
                args=args,
                run=run,
            )
        except BaseException:
            if self.run_folder.claimed is not None:  # a run that failed before its first checkpoint leaves no folder
                run_folders.drop_if_unused(self.run_folder.claimed)
            raise

    def subcommands(self: LessonCLI | None = None) -> dict[str, set[str]]:
        """The table's Lightning and trainer subcommands (cli/subcommands.py): each one's flags come from the
        AppTrainer method of its name.

        Asked on the class (``LessonCLI.subcommands()``, as LightningCLI's static method is): the whole table.
        Asked by a CLI being built for a subcommand it knows: that one alone, so the parser builds one subparser
        and not six (half of ``fit --help``'s parser time); an unknown or missing one gets the whole table, whose
        names the parser's error then lists.
        """
        lightning = LightningCLI.subcommands()
        table = {
            name: lightning.get(name, {"model", "datamodule"})
            for name, sub in SUBCOMMANDS.items()
            if sub.kind in ("lightning", "trainer")
        }
        chosen = getattr(self, "flags", Flags()).subcommand
        return {chosen: table[chosen]} if chosen in table else table

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
                "trainer.default_root_dir": RUNS,  # where checkpoints go even with --trainer.logger false
                "trainer.logger": {
                    "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                    "init_args": {"save_dir": RUNS, "name": AUTO, "default_hp_metric": False},
                },
            }
        )
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")
        parser.link_arguments("data.class_names", "model.init_args.class_names", apply_on="instantiate")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse the command line on top of the checkpoint's layer (see checkpoint_layer.py): once when
        ``--ckpt_path`` is a flag, twice when it comes from a config file."""
        if isinstance(args, (dict, Namespace)):
            return super().parse_arguments(parser, args)
        flags = self.flags
        base = Namespace()
        if flags.ckpt_path:
            self.layer = CheckpointLayer(flags.ckpt_path, flags.save_dir or flags.default_root_dir or RUNS, flags)
            base = self.layer.namespace(flags.subcommand)
        if flags.subcommand in TRAINER_SUBCOMMANDS:
            self._default_classes(base, flags.subcommand)
        self.config = parser.parse_args(args, namespace=base)
        subcommand = self.config.get("subcommand")
        if subcommand is None or not self.config[subcommand].get("ckpt_path"):
            return
        section = self.config[subcommand]
        if self.layer is None or self.layer.looked_in not in (None, save_folder(section)):
            # --ckpt_path came from a config file, or best/last must look where a config file puts the runs
            self.layer = CheckpointLayer(section.ckpt_path, save_folder(section), flags)
            base = self.layer.namespace(subcommand)
            self._default_classes(base, subcommand)
            self.config = parser.parse_args(args, namespace=base)
            section = self.config[subcommand]
        self.layer.check_flags(subcommand, section)
        # LightningCLI (2.6) would load the whole checkpoint again after this hook to merge its model settings,
        # which the checkpoint layer has done from its one bounded read: the path waits until before_instantiate
        self.held_ckpt_path, section.ckpt_path = section.ckpt_path, None

    @staticmethod
    def _default_classes(base: Namespace, subcommand: str) -> None:
        """The MLP on MNIST unless something names other classes: a layer under the configs and flags, not the
        parser's defaults, from which jsonargparse would carry the MLP's settings into a ``--model`` chosen
        instead (``--model Classifier`` would train with dropout 0, ``--data CatDogDataModule`` with batch 64)."""
        for key, default in (("model", DEFAULT_MODEL), ("data", DEFAULT_DATA)):
            if f"{subcommand}.{key}" not in base:
                base[f"{subcommand}.{key}"] = Namespace(class_path=default)

    # ---- before and after instantiation --------------------------------------------------------------------

    def _section(self, config: Namespace) -> Namespace:
        return config[self.subcommand] if self.subcommand else config

    def before_instantiate_classes(self) -> None:
        if self.subcommand != "fit":
            terminal.evaluating()
        elif self.layer is not None:
            terminal.resuming()
        section = self._section(self.config)
        if self.held_ckpt_path is not None:
            section.ckpt_path = self.held_ckpt_path
        quick_exit.forbid_outside(class_paths(section))  # a user's code: the interpreter's own exit
        self._show_the_backbones_normalisation(section)
        if self.layer is not None:  # the checkpoint holds the backbone's weights: fetch none
            init_args = section.model.get("init_args")
            if init_args is not None and init_args.get("weights") not in (None, "none"):
                init_args.weights = "none"
        resumed_from = (self.layer.path, self.layer.run) if self.layer is not None else None
        self.run_folder = choose_run_folder(section, self.subcommand, resumed_from)

    @staticmethod
    def _show_the_backbones_normalisation(section: Namespace) -> None:
        """A transfer model's ``input_mean``/``input_std`` left at None (its backbone's) written out, so the
        run's config.yaml and hparams.yaml show the numbers the model normalises with."""
        init_args = section.model.get("init_args") or {}
        backbone = init_args.get("backbone")
        if backbone is None or "input_mean" not in init_args:
            return
        mean, std = input_normalization(backbone, init_args.get("input_mean"), init_args.get("input_std"))
        init_args["input_mean"], init_args["input_std"] = mean, std

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
        if self.subcommand == "fit" and init_from and self.layer is None:
            load_weights(self.model, init_from)  # fails here, before a run folder exists; setup() loads them again
        if self.layer is not None:
            self.layer.check_instantiated(self.subcommand, self.model, self.trainer, self.datamodule)

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
        self.save_config_kwargs = {"overwrite": False, "config_filename": self.run_folder.config_filename()}
        return super().instantiate_trainer(**{"callbacks": callbacks, "plugins": plugins or None, **kwargs})

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
        if self.trainer.global_rank == 0:
            print(summary(self.trainer, best), flush=True)
