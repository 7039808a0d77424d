"""How runs end: mistyped flags, SIGTERM, leftovers of killed writes, and what metrics.json points at."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from datamodules.base import readable_files
from datamodules.image_io import list_image_files, read_grey
from lightning_app.errors import first_line
from lightning_app.runs.checkpoint_writer import AtomicCheckpointIO
from tests.helpers.data import write_idx_dataset
from tests.helpers.processes import ROOT, python_cli


def one_line_error(run_cli, capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(*args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize(
    "flag, nearest",
    [
        ("--trainer.max_epocs", "--trainer.max_epochs"),
        ("--model.lrr", "--model.lr"),
        ("--data.batchsize", "--data.batch_size"),
        ("--checkpoint.monitr", "--checkpoint.monitor"),
        ("--ckpt_pth", "--ckpt_path"),
    ],
)
def test_a_mistyped_flag_names_the_nearest_one(run_cli, capsys, flag, nearest):
    err = one_line_error(run_cli, capsys, "fit", flag, "3")
    assert err == f"error: unknown flag {flag}: did you mean {nearest}? (see `python -m lightning_app fit --help`)"


def test_a_flag_of_the_chosen_model_is_suggested_for_that_model(run_cli, capsys):
    err = one_line_error(run_cli, capsys, "test", "--model", "Classifier", "--model.dropuot", "0.1")
    assert "did you mean --model.dropout?" in err and "lightning_app test --help" in err


def test_first_line_quotes_the_first_non_blank_line_of_an_error():
    assert first_line(ValueError("\n  no such file  \n  details")) == "no such file"
    assert first_line(ValueError()) == first_line(ValueError("  \n ")) == "ValueError"  # no message: its type
    assert first_line(OSError("x" * 500), 100) == "x" * 100


def test_a_wrong_value_and_a_missing_config_are_one_line(run_cli, capsys):
    assert "trainer.max_epochs" in one_line_error(run_cli, capsys, "fit", "--trainer.max_epochs", "abc")
    assert "neither a file nor a shipped config" in one_line_error(run_cli, capsys, "fit", "-c", "nothere.yaml")


def test_a_killed_write_leaves_a_temporary_file_that_the_next_save_removes(tmp_path):
    stale = tmp_path / ".last.ckpt.99999.tmp"
    stale.write_bytes(b"half a checkpoint")
    AtomicCheckpointIO().save_checkpoint({"step": 3}, tmp_path / "last.ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_metrics_json_names_a_best_checkpoint_that_exists(mnist_run):
    best = json.loads((mnist_run / "metrics.json").read_text())["best_model_path"]
    assert Path(best).is_file()


@pytest.mark.long
def test_sigterm_keeps_the_finished_epochs_and_exits_143(tmp_path):
    data = write_idx_dataset(tmp_path / "data", "MNIST", n_train=6000, n_test=100)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["fit", "--data.data_dir", str(data), "--trainer.max_epochs", "100", "--data.download", "false"]
    run = subprocess.Popen(
        [sys.executable, "-m", "lightning_app", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    last = tmp_path / "logs/MLP-MNIST/version_0/checkpoints/last.ckpt"
    deadline = time.monotonic() + 120
    while not last.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(1.0)  # into the next epoch
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 143
    assert err.strip().splitlines()[-1].startswith("error: stopped by SIGTERM")
    assert "Traceback" not in err
    epoch = torch.load(last, weights_only=True)["epoch"]
    assert 0 <= epoch < 99
    more = ["--trainer.max_epochs", str(epoch + 2), "--data.download", "false"]
    resumed = python_cli("fit", "--ckpt_path", "last", *args[1:5], *more, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert torch.load(last, weights_only=True)["epoch"] == epoch + 1


def test_predict_on_a_file_with_a_254_byte_name(idx_root, run_cli, mnist_run, tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "mine"
    folder.mkdir()
    name = "ü" * 125 + ".png"  # 254 bytes in UTF-8
    Image.new("L", (28, 28), 0).save(folder / name)
    run_cli("predict", "--ckpt_path", "last", "--data.data_dir", str(idx_root), "--data.predict_path", str(folder))
    out = capsys.readouterr().out
    csv = Path(out.split("predictions: ")[1].split()[0]).read_text()
    assert name in csv
    assert len(list(Path(out.split("pictures: 1 PNG file(s) in ")[1].split()[0]).glob("*.png"))) == 1


def test_predict_on_ones_own_files_needs_only_the_checkpoint(run_cli, mnist_run, tmp_path, capsys):
    """Issue 33: three digit PNGs ended with "MNIST is not in data/MNIST/raw/": the archives are not needed."""
    from PIL import Image

    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(3):
        Image.new("L", (40, 40), 40 * i).save(folder / f"digit{i}.png")
    no_data = ["--data.data_dir", str(tmp_path / "no_archives_here")]
    run_cli("predict", "--ckpt_path", "last", *no_data, "--data.predict_path", str(folder))
    out = capsys.readouterr().out
    assert len(Path(out.split("predictions: ")[1].split()[0]).read_text().splitlines()) == 4
    assert not (tmp_path / "no_archives_here").exists()  # nothing downloaded, nothing made


@pytest.mark.long  # moved out of the 2-minute suite (several fits)
def test_best_with_a_model_named_picks_that_models_runs(idx_root, run_cli, mnist_run, capsys):
    run_cli("fit", "--model", "Classifier", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "1")
    capsys.readouterr()
    run_cli("test", "--ckpt_path", "best", "--model", "MLP", "--data.data_dir", str(idx_root))
    out = capsys.readouterr().out
    assert "MLP-MNIST" in out and "Classifier" not in out


def unreadable_among_readable(folder: Path, good: int = 3) -> Path:
    from PIL import Image

    folder.mkdir()
    for i in range(good):
        Image.new("L", (28, 28), 40 * i).save(folder / f"digit{i}.png")
    (folder / "broken.png").write_bytes(b"not an image")
    return folder


def test_predict_leaves_out_an_unreadable_file_with_a_warning(idx_root, run_cli, mnist_run, tmp_path, capsys):
    folder = unreadable_among_readable(tmp_path / "mine")
    with pytest.warns(UserWarning, match=r"left out 1 unreadable file\(s\): .*broken.png is not a readable image"):
        readable_files(list_image_files(folder), read_grey)
    run_cli("predict", "--ckpt_path", "last", "--data.data_dir", str(idx_root), "--data.predict_path", str(folder))
    captured = capsys.readouterr()
    rows = Path(captured.out.split("predictions: ")[1].split()[0]).read_text().splitlines()[1:]
    assert [Path(r.split(",")[0]).name for r in rows] == ["digit0.png", "digit1.png", "digit2.png"]


@pytest.mark.long
def test_ddp_predict_with_an_unreadable_file_ends_cleanly(idx_root, tmp_path):
    folder = unreadable_among_readable(tmp_path / "mine", good=4)
    data = ["--data.data_dir", str(idx_root)]
    fit = python_cli("fit", *data, "--trainer.max_epochs", "1", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr[-2000:]
    ddp = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]
    predict = python_cli(
        "predict", "--ckpt_path", "last", *data, "--data.predict_path", str(folder), *ddp, cwd=tmp_path
    )
    assert predict.returncode == 0, predict.stderr[-2000:]
    assert "Traceback" not in predict.stderr and "broken.png" in predict.stderr
    csv = Path(tmp_path / predict.stdout.split("predictions: ")[1].split()[0]).read_text().splitlines()[1:]
    assert sorted(Path(r.split(",")[0]).name for r in csv) == [f"digit{i}.png" for i in range(4)]


def test_a_full_disk_while_checkpointing_is_one_line_and_keeps_the_last_checkpoint(
    idx_root, run_cli, mnist_run, capsys, monkeypatch
):
    import errno

    last = mnist_run / "checkpoints" / "last.ckpt"
    before = last.read_bytes()

    def disk_full(obj, handle):
        handle.write(b"some bytes")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    err = one_line_error(
        run_cli, capsys, "fit", "--ckpt_path", "last", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "2"
    )
    assert "No space left on device" in err and "go on with `fit --ckpt_path last`" in err
    assert last.read_bytes() == before
    assert not list(last.parent.glob("*.tmp"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--fast_path.steps_per_load", "0"), "--fast_path.steps_per_load must be a positive integer, got 0"),
        (
            (
                "--trainer.callbacks",
                "lightning_app.engine.feature_cache.FeatureCache",
                "--trainer.callbacks.views",
                "0",
            ),
            "FeatureCache views and batch_size",
        ),
    ],
)
def test_a_bad_setting_of_the_apps_sections_is_one_line(run_cli, capsys, idx_root, args, message):
    with pytest.raises(SystemExit) as exit_info:
        run_cli("fit", "--data.data_dir", str(idx_root), *args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--model.lr", "nan"),
            "error: --model.lr expects a float, got nan (see `python -m lightning_app fit --help`)",
        ),
        (("--model.lr", "inf"), "error: --model.lr expects a float, got inf"),
        (("--data.batch_size", "1e9"), "error: --data.batch_size expects an int, got 1000000000.0"),
        (("--trainer.max_epochs", "-5"), "error: `max_epochs` must be a non-negative integer or -1. You passed in -5."),
        (
            ("--trainer.logger.init_args.save_dir", "foo://runs"),
            "error: foo://runs is not a folder or a URL this app can use (Unsupported filesystem: 'foo')",
        ),
        (("--trainer.default_root_dir", "foo://runs"), "error: foo://runs is not a folder or a URL this app can use"),
    ],
)
def test_a_bad_value_is_one_line_that_names_the_setting(run_cli, capsys, idx_root, args, message):
    with pytest.raises(SystemExit) as exit_info:
        run_cli("fit", "--data.data_dir", str(idx_root), *args)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err.startswith(message) and len(err.splitlines()) == 1, err
    assert not Path("logs").exists()  # nothing left behind


def test_a_url_whose_filesystem_is_not_installed_is_one_line(run_cli, capsys, idx_root, monkeypatch):
    import fsspec

    def missing(protocol):
        raise ImportError(f"Install {protocol}fs to access {protocol.upper()}")

    monkeypatch.setattr(fsspec, "get_filesystem_class", missing)  # as on a machine without s3fs
    with pytest.raises(SystemExit) as exit_info:
        run_cli("test", "--data.data_dir", str(idx_root), "--ckpt_path", "s3://bucket/run/last.ckpt")
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1
    assert err == (
        "error: s3://bucket/run/last.ckpt needs a package not installed (Install s3fs to access S3): install it, "
        "or use a local folder"
    )


@pytest.mark.long
def test_a_reader_that_leaves_early_costs_no_result(idx_root, mnist_run, tmp_path):
    """`predict ... | head -1`: the pipe closes after the first line; the run still writes its CSV, keeps its folder
    and ends with status 0, saying nothing more."""
    from PIL import Image

    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(3):
        Image.new("L", (28, 28), 40 * i).save(folder / f"digit{i}.png")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["predict", "--ckpt_path", "last", "--data.data_dir", str(idx_root), "--data.predict_path", str(folder)]
    child = subprocess.Popen(
        [sys.executable, "-m", "lightning_app", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    child.stdout.readline()  # as head -1 does, then the reader is gone
    child.stdout.close()
    _, err = child.communicate(timeout=300)
    assert child.returncode == 0, err.decode()[-2000:]
    assert b"Traceback" not in err and b"BrokenPipe" not in err
    written = list(tmp_path.glob("logs/MLP-MNIST/version_*/predictions/predictions.csv"))
    assert written and len(written[0].read_text().splitlines()) == 4  # a header and three digits


def test_a_failed_start_drops_its_empty_folder_but_never_results(tmp_path):
    from lightning_app.runs.run_folders import drop_if_unused

    started, finished = tmp_path / "a" / "version_0", tmp_path / "b" / "version_0"
    for run in (started, finished):
        run.mkdir(parents=True)
        (run / "config.yaml").write_text("x")
        (run / "hparams.yaml").write_text("x")
    (finished / "predictions").mkdir()
    (finished / "predictions" / "predictions.csv").write_text("file,class\n")
    assert drop_if_unused(started) and not started.exists()
    assert not drop_if_unused(finished) and (finished / "predictions" / "predictions.csv").exists()


def test_names_from_data_cannot_forge_lines_or_reach_the_terminal(run_cli, capsys):
    """A path with a newline and escape sequences in it is printed on the one error line, without control bytes."""
    with pytest.raises(SystemExit) as stop:
        run_cli("test", "--ckpt_path", "x\nerror: forged\x1b]0;title\x07\x1b[2J.ckpt")
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "\x1b" not in err and "\x07" not in err and err.startswith("error: ")


def test_an_error_in_a_loader_worker_names_the_file_not_the_worker():
    """A DataLoader raises a worker's error again as "Caught DataError in DataLoader worker process 0." with the
    worker's traceback: the one line is the worker's own message, which names the photo."""
    from datamodules import DataError

    wrapped = DataError(
        "Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1, in read\ndatamodules.errors.DataError: photos/cat/broken.jpg is not a readable image'
    )
    assert first_line(wrapped) == "photos/cat/broken.jpg is not a readable image"
