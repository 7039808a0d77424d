"""The subcommand table: every verb of ``python -m lightning_app`` (and ``dlwp``), what it does, and what runs it.

Plain data, importing neither torch nor Lightning (they take seconds to load), so the top-level help is instant.
``lightning``: one of LightningCLI's four; ``trainer``: a method of ``AppTrainer`` that LightningCLI runs as a
subcommand (its flags come from the method's signature); ``function``: a function of a checkpoint alone, no data
and no Trainer, whose flags come from its signature (jsonargparse's ``auto_cli``); ``study``: a function handed
``fit``'s flags and its own, which runs ``fit`` many times (``sweep``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple


class Subcommand(NamedTuple):
    kind: str  # lightning | trainer | function | study
    summary: str  # the help line (continued lines start with a space)
    target: str = ""  # the import path of what runs it, for kind "function"

    def function(self):
        """The function a ``function`` subcommand runs, imported (its module may import torch)."""
        import importlib

        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)


SUBCOMMANDS: dict[str, Subcommand] = {
    "fit": Subcommand(
        "lightning",
        "train (then test the best checkpoint); --ckpt_path last resumes exactly,\n"
        " --model.init_from FILE starts a new run from saved weights",
    ),
    "validate": Subcommand("lightning", "evaluate on the validation split      (--ckpt_path FILE|best|last)"),
    "test": Subcommand("lightning", "evaluate on the test split            (--ckpt_path FILE|best|last)"),
    "predict": Subcommand("lightning", "class probabilities for the test split or --data.predict_path FILE_OR_FOLDER"),
    "lr_find": Subcommand(
        "trainer", "a learning-rate range test: the plot, the suggested rate and the fit command using it"
    ),
    "interpret": Subcommand(
        "trainer", "test, then the highest-loss images, most-confused pairs, per-class scores (--ckpt_path best)"
    ),
    "check": Subcommand(
        "trainer",
        "know your data before training: duplicates, leaks between splits, likely label errors, unreadable files\n"
        " (same --data as fit; pip extra [check])",
    ),
    "sweep": Subcommand(
        "study",
        "an Optuna study over a config's settings: fit's flags plus --sweep.trials N, --sweep.space FILE, ...\n"
        " (resumable, several processes or machines; pip extra [sweep])",
        "lightning_app.cli.sweep:sweep",
    ),
    "export": Subcommand(
        "function",
        "an ONNX model with its class names and preprocessing (--ckpt_path best; pip extra [export])",
        "lightning_app.toolkit.export:export_onnx",
    ),
    "demo": Subcommand(
        "function",
        "a web page on 127.0.0.1: draw a digit or drop a photo, watch the model answer (--ckpt_path best)",
        "lightning_app.toolkit.demo:serve",
    ),
    "optimize": Subcommand(
        "function",
        "an image folder as a LitData stream to train from (--data_dir PHOTOS --output DIR_OR_URL; extra [stream])",
        "lightning_app.toolkit.optimize:optimize_images",
    ),
    "completion": Subcommand(
        "function",
        'a shell completion script for bash, zsh or tcsh: eval "$(dlwp completion bash)"',
        "lightning_app.cli.completion:completion",
    ),
}
TRAINER_SUBCOMMANDS = tuple(name for name, sub in SUBCOMMANDS.items() if sub.kind in ("lightning", "trainer"))


def program() -> str:
    """How the user started the app, for usage lines and hints: ``dlwp`` or ``python -m lightning_app``."""
    return "dlwp" if Path(sys.argv[0]).name.startswith("dlwp") else "python -m lightning_app"


def usage(prog: str | None = None) -> str:
    """The top-level help."""
    prog = prog or program()
    lines = [
        f"usage: {prog} {{{','.join(SUBCOMMANDS)}}} [options]",
        "",
        "The 'Deep Learning with PyTorch' lesson as a Lightning application.",
        "",
        "subcommands:",
    ]
    for name, sub in SUBCOMMANDS.items():
        first, *rest = sub.summary.split("\n")
        lines.append(f"  {name:<10} {first}")
        lines += [f"  {'':<10}{line}" for line in rest]
    lines += [
        "",
        "common options:",
        "  -c, --config NAME|FILE   a shipped config (mnist_mlp, fashion_classifier, catdog_transfer,",
        "                           catdog_finetune) or a YAML file",
        "  --model NAME             MLP (default), Classifier, TransferModel",
        "  --data NAME              MNISTDataModule (default), FashionMNISTDataModule, CatDogDataModule,",
        "                           StreamingImageDataModule",
        f"  --model.X, --data.X, --trainer.X   any setting; see `{prog} fit --help`",
        "  --print_config           show every setting of a command (callbacks included) and exit",
        "  --tensorboard_views.every_s 30, --metrics_json null, ...   tune or switch off the app's callbacks",
        "",
        "Runs, checkpoints and TensorBoard logs go to logs/; watch them with",
        "  tensorboard --logdir logs --host 127.0.0.1",
    ]
    return "\n".join(lines) + "\n"
