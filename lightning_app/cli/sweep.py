"""``sweep``: an Optuna study over the settings of any config ``fit`` runs (``python -m lightning_app sweep``).

The command line is ``fit``'s (``-c NAME|FILE``, ``--model.*``, ``--data.*``, ``--trainer.*``) plus ``--sweep.*``.
Each trial is a normal ``fit`` run (TensorBoard, metrics.json, checkpoints) in ``logs/sweeps/<name>/trial_N/``,
its settings drawn by Optuna's TPE from the space (``--sweep.space FILE``, or the model's shipped space in
``cli/spaces/``) and its poor runs pruned at a validation by Optuna's median pruner (``callbacks/trial_report.py``).
Trial 0 is the config as given, so a study never ends below its starting point.

The study lives in a database (SQLite in the study's folder by default; any URL Optuna's RDB storage takes, so
workers on several machines share one study). The same command again goes on to ``--sweep.trials`` finished
(complete or pruned) trials. A trial whose process died (SIGKILL, a lost machine) is marked failed: at once when it
ran on this machine and its process is gone, otherwise by Optuna's heartbeat; its number is never reused.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from lightning_app.callbacks.trial_report import TrialReport
from lightning_app.errors import AppError, SettingError, first_line, printable, require
from lightning_app.runs.checkpoints import run_name
from lightning_app.runs.run_folders import RUNS
from lightning_app.runs.storage import replace_file

SWEEPS = "sweeps"  # under logs/
HEARTBEAT_S, GRACE_S = 30, 120  # Optuna's heartbeat: a trial silent for GRACE_S is another machine's dead one
MAX_SPACE_BYTES = 100_000


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


@dataclass
class Study:
    """A study, its folder, and what each of its trials runs."""

    settings: Settings
    fit_args: list[str]
    space: list[Dimension]
    folder: Path
    storage_url: str
    optuna: Any = None
    study: Any = None
    seen: set[int] = field(default_factory=set)

    def open(self) -> None:
        optuna = self.optuna
        try:
            with warnings.catch_warnings():  # the heartbeat is "experimental" in Optuna 4 and 5
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    self.storage_url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S
                )
            self.study = optuna.create_study(
                study_name=self.folder.name,
                storage=storage,
                load_if_exists=True,
                direction="maximize" if self.settings.maximize else "minimize",
                pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
            )
            # seeded, and on from where the study is: a resumed study (or another worker) draws new settings
            self.study.sampler = optuna.samplers.TPESampler(seed=self.settings.seed + len(self.study.trials))
        except Exception as err:  # noqa: BLE001 - a database URL fails in many ways (driver, network, file)
            raise SettingError(
                f"--sweep.storage {printable(self.storage_url, 200)} cannot be opened ({first_line(err, 160)}): "
                "check the URL, that the database is reachable and its driver installed"
            ) from None

    def count(self, *states: str) -> int:
        return sum(1 for t in self.study.get_trials(deepcopy=False) if t.state.name in states)

    def fail_dead_trials(self) -> None:
        """Mark failed the running trials whose process on this machine is gone (killed, crashed)."""
        host = socket.gethostname()
        for trial in self.study.get_trials(deepcopy=False, states=(self.optuna.trial.TrialState.RUNNING,)):
            pid = trial.user_attrs.get("pid")
            if trial.user_attrs.get("host") == host and isinstance(pid, int) and pid != os.getpid() and not alive(pid):
                with contextlib.suppress(Exception):  # another process may have just done it
                    self.study.tell(trial.number, state=self.optuna.trial.TrialState.FAIL)
                    print(f"trial {trial.number}: its process {pid} is gone; marked failed", flush=True)

    def enqueue_the_config(self, config: dict) -> None:
        """Trial 0: the config's own values; again on a resume whose earlier try of it failed (was killed)."""
        live = ("COMPLETE", "PRUNED", "RUNNING", "WAITING")
        trials = self.study.get_trials(deepcopy=False)
        if any(t.user_attrs.get("as_given") and t.state.name in live for t in trials):
            return
        params = {d.name: d.encoded(lookup(config, d.name)) for d in self.space}
        self.study.enqueue_trial(params, user_attrs={"as_given": True})

    def trial_args(self, number: int, values: dict[str, Any]) -> list[str]:
        flags = [d.flag(values[d.name]) for d in self.space]
        where = ["--trainer.default_root_dir", str(self.folder), "--trainer.logger.init_args.name", f"trial_{number}"]
        return ["fit", *self.fit_args, *flags, *where, "--trainer.enable_model_summary=false"]

    def objective(self, trial: Any) -> float:
        from lightning_app.cli.lesson_cli import LessonCLI

        values = {d.name: d.suggest(trial) for d in self.space}
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        report = TrialReport(trial, self.settings.metric, self.settings.maximize)

        class TrialCLI(LessonCLI):
            def instantiate_trainer(self, **kwargs: Any):
                trainer = super().instantiate_trainer(**kwargs)
                trainer.callbacks.append(report)  # as AppTrainer.interpret adds its own
                if self.run_folder.claimed is not None:
                    trial.set_user_attr("run", str(self.run_folder.claimed))
                return trainer

        TrialCLI(args=self.trial_args(trial.number, values))
        if report.best is None:
            raise SettingError(f"the run logged no {self.settings.metric}: pass --sweep.metric val/loss, say")
        return report.best

    def work(self) -> None:
        """Run trials until the study holds ``trials`` finished ones (counting those running elsewhere)."""
        optuna = self.optuna
        self.seen |= {t.number for t in self.study.get_trials(deepcopy=False) if t.state.is_finished()}
        failures = 0
        while True:
            self.fail_dead_trials()
            if self.count("COMPLETE", "PRUNED") + self.count("RUNNING") >= self.settings.trials:
                return
            self.study.optimize(self.objective, n_trials=1, catch=(AppError, ValueError, RuntimeError))
            mine = [t for t in self.study.get_trials(deepcopy=False) if t.state.is_finished()]
            mine = [t for t in mine if t.number not in self.seen and t.user_attrs.get("pid") == os.getpid()]
            for trial in mine:
                self.announce(trial)
            failed = any(t.state == optuna.trial.TrialState.FAIL for t in mine)
            failures = failures + 1 if failed else 0
            if failures >= 3:
                raise SettingError("three trials in a row failed: see their lines above, fix the config or space")

    def announce(self, trial: Any) -> None:
        if trial.number in self.seen:
            return
        self.seen.add(trial.number)
        params = ", ".join(f"{k.split('.')[-1]}={short(v)}" for k, v in trial.params.items())
        state = trial.state.name.lower()
        value = f" {self.settings.metric} {trial.value:.4f}" if trial.value is not None else ""
        reason = f" ({printable(trial.system_attrs.get('fail_reason', ''), 160)})" if state == "fail" else ""
        print(f"trial {trial.number}: {state}{value}{reason}  {params}", flush=True)


def short(value: Any) -> str:
    if isinstance(value, str) and value.startswith("["):
        return value.replace(" ", "")
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---- the end: a table, best.yaml, plots --------------------------------------------------------------------


def table(study: Study) -> list[str]:
    trials = sorted(study.study.get_trials(deepcopy=False), key=lambda t: t.number)
    names = [d.name for d in study.space]
    header = ["trial", "state", study.settings.metric, "seconds", *[n.split(".", 1)[1] for n in names]]
    rows = []
    for t in trials:
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
        rows.append(
            [
                str(t.number),
                t.state.name.lower(),
                f"{t.value:.4f}" if t.value is not None else "",
                f"{seconds:.0f}" if seconds is not None else "",
                *[short(t.params.get(n, "")) for n in names],
            ]
        )
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
    return ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in [header, *rows]]


def finish(study: Study) -> None:
    """The table, ``best.yaml`` (a config ``fit -c`` runs as it is) and Optuna's plots, in the study's folder."""
    print("\n".join(table(study)), flush=True)
    complete = [t for t in study.study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not complete:
        print("no trial completed: no best.yaml", flush=True)
        return
    best = study.study.best_trial
    values = {
        d.name: json.loads(best.params[d.name]) if d.choices is not None else best.params[d.name] for d in study.space
    }
    config = resolved_config([*study.fit_args, *[d.flag(values[d.name]) for d in study.space]])
    text = f"# the best of study {study.folder.name}: trial {best.number}, {study.settings.metric} {best.value:.4f}\n"
    text += yaml.safe_dump(config, sort_keys=False)
    replace_file(study.folder / "best.yaml", lambda handle: handle.write(text.encode()))
    print(f"best: trial {best.number}, {study.settings.metric} {best.value:.4f}; its run: {best.user_attrs.get('run')}")
    print(f"train with it: python -m lightning_app fit -c {study.folder / 'best.yaml'}")
    plots(study)


def plots(study: Study) -> None:
    from matplotlib import pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    for name, draw in (
        ("history", optuna_plots.plot_optimization_history),
        ("importance", optuna_plots.plot_param_importances),
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = draw(study.study)
            figure = axes.figure if hasattr(axes, "figure") else axes[0].figure
            figure.set_size_inches(8, 5)
            figure.tight_layout()
            replace_file(
                study.folder / f"{name}.png", lambda handle, f=figure: f.savefig(handle, format="png", dpi=100)
            )
            plt.close(figure)
        except (ValueError, RuntimeError, ZeroDivisionError) as err:  # too few trials for importances
            print(f"no {name}.png ({first_line(err, 120)})", flush=True)
    print(f"study folder: {study.folder} (TensorBoard: tensorboard --logdir {study.folder} --host 127.0.0.1)")


# ---- the command -------------------------------------------------------------------------------------------


def sweep(args: list[str], prog: str = "python -m lightning_app") -> None:
    """``sweep``'s entry point (``cli/main.py``): known problems are raised as one-line errors."""
    if "-h" in args or "--help" in args:
        print(usage(prog), end="")
        return
    settings, fit_args = split_flags(args)
    optuna = require("optuna", "sweep", "sweep")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = resolved_config(fit_args)
    model, data = lookup(config, "model.class_path"), lookup(config, "data.class_path")
    space, where = read_space(settings.space, str(model))
    for d in space:
        try:
            d.include(lookup(config, d.name))
        except KeyError:
            raise SettingError(
                f"{where}: {printable(d.name, 80)} is not a setting of this config: see `{prog} fit --print_config`"
            ) from None
    folder_name = (lookup(config, "data.init_args.data_dir") if "CatDog" in str(data) else None) or None
    name = settings.name or run_name(str(model), str(data), folder_name)
    if not name or "/" in name or name.startswith("."):
        raise SettingError(f"--sweep.name {name!r} is not a folder name")
    folder = Path(RUNS) / SWEEPS / name
    folder.mkdir(parents=True, exist_ok=True)
    study = Study(settings, fit_args, space, folder, settings.storage or f"sqlite:///{folder / 'study.db'}", optuna)
    study.open()
    study.fail_dead_trials()  # before trial 0 is looked for: a killed try of it runs again
    study.enqueue_the_config(config)
    if not settings.worker:
        finished = study.count("COMPLETE", "PRUNED")
        print(
            f"study {name}: {finished} of {settings.trials} trials finished; space {where}; "
            f"{settings.metric} ({'max' if settings.maximize else 'min'}imised); storage {study.storage_url}",
            flush=True,
        )
    if settings.jobs > 1 and not settings.worker:
        run_workers(study, args)
    else:
        study.work()
    if not settings.worker:
        finish(study)


def run_workers(study: Study, args: list[str]) -> None:
    """``jobs`` processes of this command, each a worker of the same study (output in worker_K.log); this one
    reports their trials as they finish."""
    base = without(args, ("--sweep.jobs", "--sweep.worker", "--sweep.seed", "--sweep.storage"))
    study.fail_dead_trials()
    workers = []
    for k in range(study.settings.jobs):
        command = [sys.executable, "-m", "lightning_app", "sweep", *base, "--sweep.worker=true"]
        command += [f"--sweep.seed={study.settings.seed + k}", f"--sweep.storage={study.storage_url}"]
        log = (study.folder / f"worker_{k}.log").open("w")
        workers.append((subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log))
    while any(process.poll() is None for process, _ in workers):
        time.sleep(2)
        for trial in study.study.get_trials(deepcopy=False):
            if trial.state.is_finished():
                study.announce(trial)
    for trial in study.study.get_trials(deepcopy=False):
        if trial.state.is_finished():
            study.announce(trial)
    for k, (process, log) in enumerate(workers):
        log.close()
        if process.returncode != 0:
            lines = (study.folder / f"worker_{k}.log").read_text(errors="replace").strip().splitlines()
            print(f"worker {k} ended with code {process.returncode}: {printable(lines[-1] if lines else '', 200)}")


def without(args: list[str], flags: tuple[str, ...]) -> list[str]:
    """``args`` without each of ``flags``, as ``--flag VALUE`` or ``--flag=VALUE``."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in flags:
            skip = True
        elif not arg.startswith(tuple(f"{flag}=" for flag in flags)):
            out.append(arg)
    return out
