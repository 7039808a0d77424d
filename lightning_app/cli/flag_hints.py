"""The nearest valid flag for a mistyped one, found from the classes' signatures (never from error texts)."""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Iterable

from lightning.pytorch import LightningDataModule, Trainer

from lightning_app.cli.sections import CALLBACKS, CHECKPOINT_IO
from lightning_app.cli.subcommands import program
from modules import ClassificationModule

TOP_LEVEL = ["--ckpt_path", "--config", "--seed_everything", "--print_config", "--help", "--model", "--data"]


def parameters(cls: type) -> list[str]:
    return [name for name in inspect.signature(cls.__init__).parameters if name not in ("self", "args", "kwargs")]


def find_class(name: str | None, base: type, default: str) -> type | None:
    """The class ``--model NAME``/``--data NAME`` (or the default) stands for, or None when unknown."""
    name = name or default
    if "." in name:
        module, _, attr = name.rpartition(".")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            return None
    return next((cls for cls in subclasses(base) if cls.__name__ == name), None)


def subclasses(base: type) -> list[type]:
    """Every loaded subclass of ``base``, at any depth."""
    found, todo = [], [base]
    while todo:
        for cls in todo.pop().__subclasses__():
            found.append(cls)
            todo.append(cls)
    return found


def sections(model: str | None, data: str | None, default_model: str, default_data: str) -> dict[str, list[str]]:
    """Each config section and the keys it takes."""
    known = {"trainer": parameters(Trainer)}
    for key, cls in (
        ("model", find_class(model, ClassificationModule, default_model)),
        ("data", find_class(data, LightningDataModule, default_data)),
    ):
        if cls is not None:
            known[key] = parameters(cls)
    for key, spec in {**CALLBACKS, **CHECKPOINT_IO}.items():
        cls = find_class(spec["default"]["class_path"], object, "")
        if cls is not None:
            known[key] = parameters(cls)
    return known


def unknown_flag_hint(argv: Iterable[str], known: dict[str, list[str]], subcommand: str | None) -> str | None:
    """``unknown flag --model.lrr: did you mean --model.lr?`` for the first flag no section takes, else None."""
    for arg in argv:
        if not arg.startswith("--"):
            continue
        flag = arg.split("=", 1)[0]
        parts = flag[2:].split(".")
        if parts[0] in known and len(parts) > 1:
            key = parts[2] if parts[1] == "init_args" and len(parts) > 2 else parts[1]
            if key in known[parts[0]] or key in ("class_path", "init_args", "help") or "+" in key:
                continue
            near = difflib.get_close_matches(key, known[parts[0]], n=1)
            suggestion = f"--{parts[0]}.{near[0]}" if near else None
        elif parts[0] in known or flag in TOP_LEVEL:
            continue
        else:
            names = TOP_LEVEL + [f"--{section}" for section in known]
            near = difflib.get_close_matches(flag, names, n=1)
            suggestion = near[0] if near else None
        hint = f"unknown flag {flag}"
        if suggestion:
            hint += f": did you mean {suggestion}?"
        return f"{hint} (see `{program()} {subcommand or 'fit'} --help`)"
    return None
