"""Each run its own folder: runs started together, runs without a logger, failed runs and resumed runs."""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lightning_app.errors import RunFolderError
from lightning_app.runs.run_folders import claim_version
from tests.helpers.processes import ROOT


def test_claims_never_share_a_number(tmp_path):
    (tmp_path / "runs" / "version_3").mkdir(parents=True)
    with ThreadPoolExecutor(8) as pool:
        claimed = list(pool.map(lambda _: claim_version(tmp_path / "runs"), range(8)))
    assert sorted(int(p.name.split("_")[1]) for p in claimed) == list(range(4, 12))


def test_a_read_only_logs_folder_is_one_line(tmp_path):
    (tmp_path / "logs").mkdir()
    os.chmod(tmp_path / "logs", 0o500)
    try:
        if os.access(tmp_path / "logs", os.W_OK):
            pytest.skip("running as a user who may write anywhere")
        with pytest.raises(RunFolderError, match="cannot create a run folder in .*logs/MLP-MNIST .Permission denied"):
            claim_version(tmp_path / "logs" / "MLP-MNIST")
    finally:
        os.chmod(tmp_path / "logs", 0o700)


def test_runs_without_a_logger_get_their_own_folders(idx_root, run_cli):
    args = ["fit", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "1", "--trainer.logger", "false"]
    run_cli(*args)
    run_cli(*args)
    lasts = sorted(Path("logs").rglob("last.ckpt"))
    assert [p.parent.parent.name for p in lasts] == ["version_0", "version_1"]
    assert all(p.parent.parent.parent.name == "MLP-MNIST" for p in lasts)


@pytest.mark.long  # moved out of the 2-minute suite (several fits)
def test_a_failed_run_leaves_no_folder_and_a_resume_keeps_the_first_config(idx_root, run_cli, mnist_run, capsys):
    run = Path("logs/MLP-MNIST/version_0")
    first = (run / "config.yaml").read_text()
    with pytest.raises(SystemExit):
        run_cli("fit", "--data.data_dir", str(idx_root / "nowhere"), "--data.download", "false")
    assert sorted(p.name for p in Path("logs/MLP-MNIST").iterdir()) == ["version_0"]  # no empty version_1
    capsys.readouterr()
    run_cli("fit", "--ckpt_path", "last", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "3")
    assert (run / "config.yaml").read_text() == first
    assert "max_epochs: 3" in (run / "config.resume-1.yaml").read_text()


@pytest.mark.long
def test_four_fits_started_together_each_finish_in_their_own_folder(idx_root, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "lightning_app", "fit", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "1"]
    procs = [
        subprocess.Popen([*args, "--model.lr", str(0.001 * (i + 1))], cwd=tmp_path, env=env, stdout=subprocess.PIPE)
        for i in range(4)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0, 0]
    runs = sorted((tmp_path / "logs/MLP-MNIST").iterdir())
    assert [r.name for r in runs] == [f"version_{n}" for n in range(4)]
    rates = sorted(
        float(line.split()[1])
        for r in runs
        for line in (r / "config.yaml").read_text().splitlines()
        if line.strip().startswith("lr:")
    )
    assert rates == [0.001, 0.002, 0.003, 0.004]  # four configs, none overwritten
    for r in runs:
        assert json.loads((r / "metrics.json").read_text())["test/acc"] >= 0
        assert (r / "checkpoints" / "last.ckpt").is_file()


def test_default_root_dir_alone_moves_the_whole_run(idx_root, run_cli):
    run_cli("fit", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "1", "--trainer.default_root_dir", "out")
    assert not Path("logs").exists()
    run = Path("out/MLP-MNIST/version_0")
    assert (run / "config.yaml").is_file() and list(run.glob("events.out.tfevents.*"))
    assert (run / "checkpoints" / "last.ckpt").is_file()


def test_a_runs_own_config_run_again_is_a_new_run_and_the_old_folder_stays_as_it_was(idx_root, run_cli, mnist_run):
    before = {p: p.stat().st_mtime_ns for p in mnist_run.rglob("*")}
    run_cli("fit", "-c", str(mnist_run / "config.yaml"), "--data.data_dir", str(idx_root))
    assert {p: p.stat().st_mtime_ns for p in mnist_run.rglob("*")} == before  # nothing added, nothing touched
    assert (Path("logs/MLP-MNIST/version_1") / "checkpoints" / "last.ckpt").is_file()
