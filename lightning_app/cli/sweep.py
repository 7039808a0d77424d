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

import subprocess
import sys
import time
from pathlib import Path

from lightning_app.cli.sweep_settings import split_flags, usage
from lightning_app.cli.sweep_space import lookup, read_space, resolved_config
from lightning_app.cli.sweep_study import SWEEPS, Study, finish
from lightning_app.errors import SettingError, printable, require
from lightning_app.runs.checkpoints import run_name
from lightning_app.runs.run_folders import RUNS


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
