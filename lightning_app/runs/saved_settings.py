"""The settings a checkpoint holds, checked by type and range before any class is built from them.

A checkpoint is a file a user was given: its hyperparameters are plain values, but any values. Each known setting
has a check here (a positive learning rate, a bounded list of class names, a mean and std of three numbers with
std nonzero, ...), and a setting the class does not take is refused, so ``test``, ``predict``, the Predictor, the
demo and ``export`` all stop at the same one line, in time linear in the file, whatever it holds.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

from lightning_app.errors import CheckpointError

MAX_CLASSES = 100_000
MAX_NAME = 200  # characters of one class name

Check = Callable[[Any], str | None]  # a complaint, or None when the value is fine


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def integer(low: int, high: int) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return None
        return f"an integer from {low:,} to {high:,}"

    return check


def number(low: float, high: float, low_open: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if _number(value) and (low < value if low_open else low <= value) and value <= high:
            return None
        return f"a number {'above' if low_open else 'from'} {low:g}{' up' if low_open else ''} to {high:g}"

    return check


def text(limit: int = 100) -> Check:
    return lambda value: (
        None if isinstance(value, str) and len(value) <= limit else f"text of at most {limit} characters"
    )


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "true or false"


def optional(check: Check) -> Check:
    return lambda value: None if value is None else check(value)


def numbers(check: Check, what: str) -> Check:
    """A list of 1 to 3 numbers (one per channel), each passing ``check``."""

    def check_all(value: Any) -> str | None:
        if isinstance(value, (list, tuple)) and 1 <= len(value) <= 3 and all(check(v) is None for v in value):
            return None
        return f"a list of 1 to 3 {what}"

    return check_all


def class_names(value: Any) -> str | None:
    if (
        isinstance(value, (list, tuple))
        and 1 <= len(value) <= MAX_CLASSES
        and all(isinstance(v, str) and 0 < len(v) <= MAX_NAME for v in value)
    ):
        return None
    return f"a list of at most {MAX_CLASSES:,} names, each text of 1 to {MAX_NAME} characters"


def hidden(value: Any) -> str | None:
    width = integer(1, 1 << 16)
    if width(value) is None:
        return None
    if isinstance(value, (list, tuple)) and len(value) <= 64 and all(width(v) is None for v in value):
        return None
    return "a width, or a list of at most 64 widths, each an integer from 1 to 65,536"


SETTINGS: dict[str, Check] = {
    # the models'
    "num_classes": integer(2, MAX_CLASSES),
    "class_names": optional(class_names),
    "lr": number(0.0, 100.0, low_open=True),
    "in_features": integer(1, 1 << 24),
    "hidden": optional(hidden),
    "dropout": number(0.0, 0.99),
    "warmup": number(0.0, 1.0),
    "lr_schedule": text(),
    "optimizer": text(),
    "init_from": optional(text(4096)),
    "backbone": text(),
    "weights": optional(text(4096)),
    "channels_last": boolean,
    "input_mean": optional(numbers(number(-1e6, 1e6), "numbers")),
    "input_std": optional(numbers(number(0.0, 1e6, low_open=True), "numbers above 0")),
    # the datamodules'
    "batch_size": integer(1, 1 << 20),
    "val_split": number(0.0, 0.99),
    "test_split": number(0.0, 0.99),
    "seed": integer(-(1 << 63), (1 << 64) - 1),
    "image_size": integer(8, 1024),  # datamodules.image_folder.MAX_SIDE
    "augment": boolean,
    "on_device": boolean,
    "mean": optional(numbers(number(-1e6, 1e6), "numbers")),
    "std": optional(numbers(number(0.0, 1e6, low_open=True), "numbers above 0")),
}


def check_settings(path: str, kind: str, cls: type, settings: dict[str, Any]) -> None:
    """Refuse, in one line, a setting of ``cls`` (the checkpoint's ``kind``: model or data) that is out of type or
    range, or one that ``cls`` does not take; names and numbers are quoted shortened."""
    parameters = inspect.signature(cls.__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    for key, value in settings.items():
        if not isinstance(key, str) or (key not in parameters and not takes_any):
            raise CheckpointError(
                f"{path} has the {kind} setting {str(key)[:60]!r}, which {cls.__name__} does not take: "
                "pass a checkpoint written by this app's fit"
            )
        check = SETTINGS.get(key)
        complaint = check(value) if check is not None else None
        if complaint is not None:
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            raise CheckpointError(
                f"{path} has the {kind} setting {key} = {shown}, which should be {complaint}: "
                "pass a checkpoint written by this app's fit"
            )
    names, count = settings.get("class_names"), settings.get("num_classes")
    if names is not None and count is not None and len(names) != count:
        raise CheckpointError(
            f"{path} has {len(names):,} class names for {count:,} classes: pass a checkpoint written by this app's fit"
        )
