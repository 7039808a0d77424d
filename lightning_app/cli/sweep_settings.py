"""``sweep``'s own flags (``--sweep.*``), read out of a command line whose other flags are ``fit``'s."""

from __future__ import annotations

from dataclasses import dataclass

from lightning_app.errors import SettingError


@dataclass
class Settings:
    """The ``--sweep.*`` flags."""

    trials: int = 20
    space: str | None = None
    metric: str = "val/acc"
    direction: str = "auto"  # maximize, minimize, or auto: minimize a metric named *loss*, else maximize
    jobs: int = 1
    storage: str | None = None
    name: str | None = None
    seed: int = 42
    worker: bool = False  # a process started by another sweep command: trials only, no summary

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize" or (self.direction == "auto" and "loss" not in self.metric)


HELP = {
    "trials": "finished (complete or pruned) trials the study goes on to (default 20)",
    "space": "a YAML file: a setting's dotted name -> {low, high, log, int} or {choices: [...]}\n"
    "(default: the model's shipped space, lightning_app/cli/spaces/<Model>.yaml)",
    "metric": "the metric each validation reports (default val/acc)",
    "direction": "maximize, minimize, or auto (minimize a metric named *loss*; default)",
    "jobs": "trials at once on this machine, each in its own process (default 1)",
    "storage": "the study's database URL (default sqlite:///logs/sweeps/<name>/study.db; any SQLAlchemy URL\n"
    "Optuna takes, e.g. postgresql://user@host/db, so workers on several machines share one study)",
    "name": "the study's name and folder under logs/sweeps/ (default <Model>-<Data>)",
    "seed": "the sampler's seed (default 42)",
}


def usage(prog: str) -> str:
    lines = [
        f"usage: {prog} sweep [fit's options: -c NAME|FILE, --model.*, --data.*, --trainer.*] [--sweep.X VALUE]",
        "",
        "An Optuna study over a config's settings; each trial is a fit run under logs/sweeps/<name>/ (pip extra",
        "[sweep]). Trial 0 is the config as given; the same command again goes on with the same study.",
        "",
        "sweep options:",
    ]
    for key, text in HELP.items():
        first, *rest = text.split("\n")
        lines.append(f"  --sweep.{key:<10} {first}")
        lines += [f"  {'':<19}{line}" for line in rest]
    lines += ["", f"fit's options: `{prog} fit --help`"]
    return "\n".join(lines) + "\n"


def split_flags(args: list[str]) -> tuple[Settings, list[str]]:
    """The ``--sweep.*`` flags (checked), and the rest, which are ``fit``'s."""
    values: dict[str, str] = {}
    rest = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--sweep."):
            key, eq, value = arg[len("--sweep.") :].partition("=")
            if key not in Settings.__dataclass_fields__:
                raise SettingError(f"--sweep.{key} is not a sweep option: choose from {', '.join(HELP)}")
            if not eq:
                if i + 1 >= len(args):
                    raise SettingError(f"--sweep.{key} needs a value")
                value, i = args[i + 1], i + 1
            values[key] = value
        else:
            rest.append(arg)
        i += 1
    settings = Settings()
    for key, text in values.items():
        kind = type(getattr(settings, key)) if getattr(settings, key) is not None else str
        try:
            value = text.lower() in ("true", "1", "yes") if kind is bool else kind(text)
        except ValueError:
            raise SettingError(f"--sweep.{key} expects {kind.__name__}, got {text!r}") from None
        setattr(settings, key, value)
    if settings.trials < 1 or settings.jobs < 1:
        raise SettingError("--sweep.trials and --sweep.jobs must be at least 1")
    if settings.direction not in ("auto", "maximize", "minimize"):
        raise SettingError(f"--sweep.direction must be maximize, minimize or auto, got {settings.direction!r}")
    return settings, rest


# ---- the space ---------------------------------------------------------------------------------------------
