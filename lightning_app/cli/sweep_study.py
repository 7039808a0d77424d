"""A sweep's Optuna study: its storage, its trials (each a ``fit`` run of this CLI), and what it leaves at the end
(a table, ``best.yaml``, Optuna's plots)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lightning_app.callbacks.trial_report import TrialReport
from lightning_app.cli.sweep_settings import Settings
from lightning_app.cli.sweep_space import Dimension, lookup, resolved_config
from lightning_app.errors import AppError, SettingError, first_line, printable
from lightning_app.runs.storage import replace_file

SWEEPS = "sweeps"  # under logs/
HEARTBEAT_S, GRACE_S = 30, 120  # Optuna's heartbeat: a trial silent for GRACE_S is another machine's dead one


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
        """Trials in any of ``states``, from one read of the storage."""
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
            if self.count("COMPLETE", "PRUNED", "RUNNING") >= self.settings.trials:
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
