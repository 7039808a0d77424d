"""``sweep``: an Optuna study over a config's settings. Bad input is one line before any trial; a small study on
the tiny data trains, prunes, resumes after a SIGKILL without reusing a number, and two processes share one
SQLite study; ``best.yaml`` runs with ``fit -c`` as it is."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers.processes import ROOT

pytest.importorskip("optuna")

TINY = ["--trainer.max_epochs", "2", "--trainer.enable_progress_bar", "false"]


def one_line_error(run_cli, capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as stop:
        run_cli("sweep", *args)
    assert stop.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize(
    ("space", "says"),
    [
        ({"model.lrr": {"low": 0.001, "high": 0.01}}, "model.lrr is not a setting of this config"),
        ({"model.lr": {"low": 0.01, "high": 0.001}}, "range is empty"),
        ({"model.dropout": {"choices": []}}, "choices are empty"),
        ({"model.lr": {"low": 0, "high": 0.1, "log": True}}, "log scale: low must be above 0"),
        ({"lr": {"low": 0.001, "high": 0.01}}, "is not a setting: name one as model.lr"),
    ],
)
def test_a_bad_space_is_one_line_before_any_trial(tmp_path, idx_root, run_cli, capsys, space, says):
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    error = one_line_error(run_cli, capsys, "--data.data_dir", str(idx_root), "--sweep.space", "space.yaml")
    assert says in error
    assert not list(tmp_path.glob("logs/sweeps/*/trial_*"))


def test_an_unreachable_storage_and_an_unknown_flag_are_one_line(tmp_path, idx_root, run_cli, capsys):
    error = one_line_error(
        run_cli, capsys, "--data.data_dir", str(idx_root), "--sweep.storage", "sqlite:////no/such/folder/x.db"
    )
    assert "--sweep.storage sqlite:////no/such/folder/x.db cannot be opened" in error
    assert "--sweep.trial is not a sweep option" in one_line_error(run_cli, capsys, "--sweep.trial", "3")
    assert "--model.lrr" in one_line_error(run_cli, capsys, "--data.data_dir", str(idx_root), "--model.lrr", "1")


def test_sweep_help_names_its_options(run_cli, capsys):
    run_cli("sweep", "--help")
    out = capsys.readouterr().out
    assert "--sweep.trials" in out and "--sweep.storage" in out and "fit --help" in out


@pytest.mark.long
def test_a_small_study_finishes_with_a_table_best_yaml_and_plots(tmp_path, idx_root, run_cli, capsys):
    run_cli("sweep", "--data.data_dir", str(idx_root), *TINY, "--sweep.trials", "3")
    out = capsys.readouterr().out
    study = tmp_path / "logs" / "sweeps" / "MLP-MNIST"
    assert "trial 0: complete" in out and "best: trial" in out
    assert {"best.yaml", "history.png", "importance.png", "study.db"} <= {p.name for p in study.iterdir()}
    for n in range(3):  # each trial a normal run folder, which TensorBoard's HParams panel compares
        run = study / f"trial_{n}" / "version_0"
        assert (run / "metrics.json").is_file() and list(run.glob("events.out.tfevents*"))
    trial_0 = yaml.safe_load((study / "trial_0" / "version_0" / "config.yaml").read_text())
    assert trial_0["model"]["init_args"]["lr"] == 0.003  # trial 0 is the config as given
    run_cli("fit", "-c", str(study / "best.yaml"), "--trainer.max_epochs", "1")
    assert "test/acc:" in capsys.readouterr().out
    assert (tmp_path / "logs" / "MLP-MNIST" / "version_0" / "metrics.json").is_file()


def sweep_process(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lightning_app", "sweep", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )


def trial_states(study: Path) -> dict[int, str]:
    with sqlite3.connect(study / "study.db") as db:
        return dict(db.execute("select number, state from trials order by number").fetchall())


@pytest.mark.long
def test_a_killed_trial_is_marked_failed_and_the_same_command_goes_on(tmp_path, idx_root):
    data = ["--data.data_dir", str(idx_root), *TINY]
    kill = ["--trainer.callbacks", "tests.helpers.callbacks.KillAt", "--fast_path.steps_per_load", "2"]
    killed = sweep_process(tmp_path, *data, "--sweep.trials", "2", *kill)  # SIGKILLed in trial 0's epoch 1
    assert killed.returncode == -9, killed.stderr[-2000:]
    study = tmp_path / "logs" / "sweeps" / "MLP-MNIST"
    assert trial_states(study) == {0: "RUNNING"}  # as a SIGKILL leaves it
    resumed = sweep_process(tmp_path, *data, "--sweep.trials", "2")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "trial 0: its process" in resumed.stdout and "marked failed" in resumed.stdout
    states = trial_states(study)
    assert states[0] == "FAIL" and sorted(states) == [0, 1, 2]  # a new number for each new trial
    assert sum(s in ("COMPLETE", "PRUNED") for s in states.values()) == 2
    with sqlite3.connect(study / "study.db") as db:  # the config as given ran again, as trial 1
        attrs = dict(db.execute("select trial_id, value_json from trial_user_attributes where key='as_given'"))
    assert len(attrs) == 2 and all(json.loads(v) for v in attrs.values())


@pytest.mark.long
def test_two_worker_processes_share_one_sqlite_study(tmp_path, idx_root):
    run = sweep_process(tmp_path, "--data.data_dir", str(idx_root), *TINY, "--sweep.trials", "4", "--sweep.jobs", "2")
    assert run.returncode == 0, run.stderr[-2000:]
    study = tmp_path / "logs" / "sweeps" / "MLP-MNIST"
    states = trial_states(study)
    assert sum(s in ("COMPLETE", "PRUNED") for s in states.values()) >= 4 and "FAIL" not in states.values()
    logs = [(study / f"worker_{k}.log").read_text() for k in range(2)]
    assert all("trial " in log for log in logs)  # both processes ran trials
    assert (study / "best.yaml").is_file()
