"""Finding checkpoints of earlier runs: ``--ckpt_path best`` and ``--ckpt_path last`` across processes."""

from __future__ import annotations

import json
from pathlib import Path

import torch

ALIASES = ("best", "last")


class CheckpointError(Exception):
    """A checkpoint that cannot be found or used; the message says what to do."""


def run_name(model_class_path: str, data_class_path: str) -> str:
    """The folder of a model/data pair's runs under ``logs/``: ``MLP-MNIST``, ``TransferModel-CatDog``."""
    model = str(model_class_path).rsplit(".", 1)[-1]
    data = str(data_class_path).rsplit(".", 1)[-1].removesuffix("DataModule")
    return f"{model}-{data}"


def newest_last_checkpoint(save_dir: str | Path, name: str | None) -> Path:
    """The most recently written ``last.ckpt`` under ``save_dir/<name>/version_*/checkpoints``."""
    pattern = f"{name or '*'}/*/checkpoints/last.ckpt"
    found = sorted(Path(save_dir).glob(pattern), key=lambda p: p.stat().st_mtime)
    if not found:
        raise CheckpointError(
            f"no checkpoint found under {Path(save_dir) / (name or '*')}/: run `fit` first or pass --ckpt_path PATH"
        )
    return found[-1]


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint safely (``weights_only=True``): no code in the file can run."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise CheckpointError(f"checkpoint {path} does not exist: check --ckpt_path") from err
    except Exception as err:  # noqa: BLE001 - any unpickling failure means: not a usable checkpoint
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path} is not a checkpoint this app can load safely ({first[:200]}): pass a .ckpt written by `fit`"
        ) from err


def best_of(last: Path) -> Path:
    """The best checkpoint recorded by ModelCheckpoint in ``last``, or ``last`` itself when none is."""
    state = load_checkpoint(last)
    for key, value in state.get("callbacks", {}).items():
        if key.startswith("ModelCheckpoint") and isinstance(value, dict) and value.get("monitor"):
            best = value.get("best_model_path")
            if best and Path(best).is_file():
                return Path(best)
    return last


def resolve(ckpt_path: str, save_dir: str | Path, name: str | None) -> str:
    """Turn ``best``/``last`` into the file of the newest run; check that a given file exists."""
    if ckpt_path in ALIASES:
        last = newest_last_checkpoint(save_dir, name)
        return str(best_of(last) if ckpt_path == "best" else last)
    if not Path(ckpt_path).is_file():
        raise CheckpointError(f"checkpoint {ckpt_path} does not exist: pass a .ckpt file, `best` or `last`")
    return ckpt_path


def flag_value(argv: list[str], flag: str) -> tuple[int, str] | None:
    """Position and value of ``flag VALUE`` or ``flag=VALUE`` in command-line arguments (first one)."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return i + 1, argv[i + 1]
        if arg.startswith(flag + "="):
            return i, arg.split("=", 1)[1]
    return None


def with_checkpoint(argv: list[str], save_dir: str = "logs") -> list[str]:
    """Command-line arguments with ``--ckpt_path`` resolved to a file, and the model and data classes of that
    checkpoint put first (with the data settings it was trained with) unless the user names them.

    So ``test --ckpt_path best --data.data_dir PATH`` needs nothing else, whatever model made the checkpoint.
    """
    found = flag_value(argv, "--ckpt_path")
    if found is None or not argv or argv[0].startswith("-"):
        return argv
    position, value = found
    named = {flag: flag_value(argv, flag) for flag in ("--model", "--data")}
    name = run_name(named["--model"][1], named["--data"][1]) if named["--model"] and named["--data"] else None
    path = resolve(value, save_dir, name)
    out = list(argv)
    out[position] = path if out[position] == value else f"--ckpt_path={path}"
    state = load_checkpoint(path)
    if not isinstance(state, dict) or "state_dict" not in state:
        raise CheckpointError(f"{path} holds no model weights: pass a .ckpt written by `fit`")
    if any(a in ("-c", "--config") or a.startswith("--config=") for a in argv):
        return out
    first = []
    for flag, key in (("--model", "hyper_parameters"), ("--data", "datamodule_hyper_parameters")):
        hparams = dict(state.get(key) or {})
        if named[flag] is None and "_class_path" in hparams:
            hparams.pop("_instantiator", None)
            class_path = hparams.pop("_class_path")
            init_args = hparams if flag == "--data" else {}  # Lightning restores the model's own
            first += [flag, json.dumps({"class_path": class_path, "init_args": init_args})]
    return [out[0], *first, *out[1:]]
