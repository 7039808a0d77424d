"""A sweep's search space (a YAML file, or the model's shipped one in ``cli/spaces/``) and the config it is drawn
over (``fit ... --print_config``, read back)."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from lightning_app.errors import SettingError, first_line, printable

MAX_SPACE_BYTES = 100_000


@dataclass
class Dimension:
    """One setting of the space: a range (``low``..``high``, ``log``, ``integer``) or ``choices``."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: list[Any] | None = None

    def flag(self, value: Any) -> str:
        return f"--{self.name}={json.dumps(value)}"

    def suggest(self, trial: Any) -> Any:
        if self.choices is not None:  # Optuna's choices are scalars: lists and others travel as JSON text
            return json.loads(trial.suggest_categorical(self.name, [json.dumps(c) for c in self.choices]))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def encoded(self, value: Any) -> Any:
        """``value`` as Optuna stores this dimension's parameter (trial 0's, enqueued)."""
        return json.dumps(value) if self.choices is not None else value

    def include(self, value: Any) -> None:
        """Widen the space to hold the config's own value, so trial 0 runs it exactly."""
        if self.choices is not None:
            if value not in self.choices:
                self.choices.append(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.log and value <= 0:
                return
            self.low, self.high = min(self.low, value), max(self.high, value)


def read_space(path: str | None, model_class: str) -> tuple[list[Dimension], str]:
    """The space in ``path``, or the model's shipped one; each entry checked, in one line each."""
    if path is None:
        name = f"{model_class.rsplit('.', 1)[-1]}.yaml"
        shipped = resources.files("lightning_app.cli.spaces") / name
        if not shipped.is_file():
            raise SettingError(f"no shipped space for the model {model_class}: pass --sweep.space FILE")
        text, where = shipped.read_text(), f"lightning_app/cli/spaces/{name}"
    else:
        file = Path(path)
        if not file.is_file():
            raise SettingError(f"--sweep.space {path} is not a file: pass a YAML file of settings and ranges")
        if file.stat().st_size > MAX_SPACE_BYTES:
            raise SettingError(f"--sweep.space {path} is over {MAX_SPACE_BYTES:,} bytes: a space names a few settings")
        text, where = file.read_text(errors="replace"), path
    try:
        entries = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SettingError(f"--sweep.space {where} is not YAML ({first_line(err, 120)})") from None
    if not isinstance(entries, dict) or not entries:
        raise SettingError(f"--sweep.space {where} names no settings: write `model.lr: {{low: 0.0001, high: 0.01}}`")
    return [dimension(str(key), spec, where) for key, spec in entries.items()], where


def dimension(name: str, spec: Any, where: str) -> Dimension:
    prefix = f"{where}: {printable(name, 80)}"
    if not name.startswith(("model.", "data.", "trainer.")):
        raise SettingError(f"{prefix} is not a setting: name one as model.lr, data.batch_size, trainer.max_epochs")
    if not isinstance(spec, dict):
        raise SettingError(f"{prefix} needs {{low: L, high: H}} or {{choices: [...]}}")
    unknown = set(spec) - {"low", "high", "log", "int", "choices"}
    if unknown:
        raise SettingError(f"{prefix} has {', '.join(sorted(map(str, unknown)))}: use low, high, log, int, choices")
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise SettingError(f"{prefix}'s choices are empty: list at least one value")
        return Dimension(name, choices=list(choices))
    low, high = spec.get("low"), spec.get("high")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        raise SettingError(f"{prefix} needs numbers low and high, got {low!r} and {high!r}")
    if not low < high:
        raise SettingError(f"{prefix}'s range is empty (low {low} is not below high {high})")
    log = bool(spec.get("log", False))
    if log and low <= 0:
        raise SettingError(f"{prefix} is on a log scale: low must be above 0, got {low}")
    integer = bool(spec.get("int", isinstance(low, int) and isinstance(high, int)))
    return Dimension(name, low, high, log, integer)


# ---- configs -----------------------------------------------------------------------------------------------


def resolved_config(args: list[str]) -> dict:
    """What ``fit ARGS --print_config`` prints, read back: every setting, checked by the parser, nothing built."""
    from lightning_app.cli.lesson_cli import LessonCLI

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            LessonCLI(args=["fit", *args, "--print_config"])
        except SystemExit as stop:
            if stop.code not in (0, None):
                raise
    return yaml.safe_load(out.getvalue()) or {}


def lookup(config: dict, dotted: str) -> Any:
    """A setting by its dotted name in a resolved config (a class's settings sit under ``init_args``)."""
    value: Any = config
    for part in dotted.split("."):
        if isinstance(value, dict) and part not in value and isinstance(value.get("init_args"), dict):
            value = value["init_args"]
        if not isinstance(value, dict) or part not in value:
            raise KeyError(dotted)
        value = value[part]
    return value


# ---- the study ---------------------------------------------------------------------------------------------
