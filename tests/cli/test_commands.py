"""The command line end to end, on tiny idx files: fit, test the best, resume, validate, predict, errors."""

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml

from tests.helpers.data import tiny_photo_args, transfer_fit_args

RUN = Path("logs/MLP-MNIST/version_0")


def fit_args(idx_root, *extra: str) -> list[str]:
    return ["fit", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "2", *extra]


def test_fit_trains_tests_best_and_writes_everything(idx_root, run_cli, capsys):
    # a user's own callback, as the README shows it, adds to the app's callback sections
    early = ["--trainer.callbacks+=EarlyStopping", "--trainer.callbacks.monitor", "val/loss"]
    run_cli(*fit_args(idx_root, *early, "--trainer.callbacks.patience", "3"))
    config = (RUN / "config.yaml").read_text()
    assert "lightning.pytorch.callbacks.EarlyStopping" in config and "patience: 3" in config
    out = capsys.readouterr().out
    ckpts = sorted(p.name for p in (RUN / "checkpoints").iterdir())
    assert "last.ckpt" in ckpts and any(n.startswith("epoch=") for n in ckpts)
    assert (RUN / "config.yaml").is_file() and (RUN / "hparams.yaml").is_file()
    assert list(RUN.glob("events.out.tfevents.*"))
    metrics = json.loads((RUN / "metrics.json").read_text())
    for key in ("train/loss", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc"):
        assert key in metrics
    assert metrics["test/acc"] > 0.5  # the bands are easy: the MLP must have learned something
    with (RUN / "metrics.csv").open(newline="") as handle:  # one row per epoch, beside TensorBoard
        rows = list(csv.DictReader(handle))
    assert [r["epoch"] for r in rows] == ["0", "1"] and rows[1]["global_step"] == str(2 * 9)
    assert float(rows[1]["val/acc"]) == pytest.approx(metrics["val/acc"]) and float(rows[0]["train/loss"]) > 0
    assert f"test/acc: {metrics['test/acc']:.4f}" in out
    assert "run folder: logs/MLP-MNIST/version_0" in out
    assert "tensorboard --logdir logs/MLP-MNIST --host 127.0.0.1" in out
    # checkpoints hold plain values only: torch's safe loader reads them
    state = torch.load(RUN / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["hyper_parameters"]["lr"] == 0.003 and state["epoch"] == 1  # 0-based: the second epoch


def test_test_validate_predict_from_checkpoints(idx_root, run_cli, mnist_run, capsys):
    best = json.loads((RUN / "metrics.json").read_text())["test/acc"]
    capsys.readouterr()
    run_cli("test", "--ckpt_path", "best", "--data.data_dir", str(idx_root))
    assert f"test/acc: {best:.4f}" in capsys.readouterr().out
    run_cli("validate", "--ckpt_path", str(RUN / "checkpoints" / "last.ckpt"), "--data.data_dir", str(idx_root))
    assert "val/acc:" in capsys.readouterr().out
    run_cli("predict", "--ckpt_path", "last", "--data.data_dir", str(idx_root))


def test_classifier_on_fashion_mnist_and_its_config(idx_root, run_cli):
    run_cli("fit", "-c", "fashion_classifier", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "1")
    run = Path("logs/Classifier-FashionMNIST/version_0")
    hp = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["hyper_parameters"]
    assert hp["dropout"] == 0.2 and hp["class_names"][0] == "T-shirt/top"
    # the checkpoint knows its model and data: `test` needs nothing else
    run_cli("test", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--data.data_dir", str(idx_root))
    assert "test/acc" in json.loads(Path("logs/Classifier-FashionMNIST/version_1/metrics.json").read_text())


@pytest.mark.long  # 7 s; resuming on the fast path is also tested in test_speed_paths
def test_resume_from_last_carries_on_and_matches_an_uninterrupted_run(idx_root, run_cli, tmp_path):
    det = ("--trainer.deterministic", "true")
    run_cli(
        *fit_args(idx_root, *det, "--trainer.callbacks", "tests.helpers.callbacks.StopAfter")
    )  # stops after epoch 1 of 2
    assert torch.load(RUN / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0
    # the checkpoint's own lr given again is no change: accepted
    run_cli(*fit_args(idx_root, *det, "--ckpt_path", str(RUN / "checkpoints" / "last.ckpt"), "--model.lr", "0.003"))
    resumed = torch.load(RUN / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["epoch"] == 1 and not Path("logs/MLP-MNIST/version_1").exists()  # same run folder
    run_cli(*fit_args(idx_root, *det))
    straight = torch.load(Path("logs/MLP-MNIST/version_1/checkpoints/last.ckpt"), weights_only=True)
    for key, value in straight["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][key], value, rtol=0, atol=1e-6)


def test_print_config_shows_every_setting(run_cli, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli("fit", "-c", "mnist_mlp", "--print_config")
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for key in ("class_path: modules.MLP", "batch_size: 64", "lr: 0.003", "monitor: val/acc", "max_epochs: 5"):
        assert key in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "Foo"], "unknown model 'Foo': choose one of Classifier, MLP, TransferModel"),
        (["--data=Bar"], "unknown data 'Bar'"),
        (["--data.batch_size", "0"], "batch_size must be a positive integer, got 0"),
        (["--data.val_split", "1.5"], "val_split must be in [0, 1), got 1.5"),
        (["--ckpt_path", "missing.ckpt"], "checkpoint missing.ckpt does not exist"),
        (["--ckpt_path", "best"], "no checkpoint found under logs/"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, run_cli, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        run_cli("fit", "--data.data_dir", str(tmp_path), "--data.download", "false", *args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_missing_data_without_network_says_which_files_and_where(run_cli, capsys, tmp_path, monkeypatch):
    import urllib.request

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(SystemExit) as exit_info:
        run_cli("fit", "--data.data_dir", str(tmp_path / "empty"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "train-images-idx3-ubyte.gz" in err and str(tmp_path / "empty" / "MNIST" / "raw") in err
    assert not Path("logs/MLP-MNIST/version_0/checkpoints").exists()


def test_a_file_that_is_not_a_checkpoint_is_refused(run_cli, capsys, tmp_path):
    bogus = tmp_path / "bogus.ckpt"
    bogus.write_bytes(b"not a checkpoint at all")
    with pytest.raises(SystemExit):
        run_cli("test", "--ckpt_path", str(bogus))
    assert "is not a file this app can load safely" in capsys.readouterr().err


def test_transfer_fit_and_test_through_the_cli(photo_root, run_cli, capsys):
    common = tiny_photo_args(photo_root)
    run_cli(*transfer_fit_args(photo_root, epochs=2))
    run = Path("logs/TransferModel-CatDog-photos/version_0")  # named after the photo folder
    config = (run / "config.yaml").read_text()
    assert "FeatureCache" in config
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    # the model's normalisation (resnet18's: ImageNet's stats) travels in its checkpoint and hparams.yaml
    assert state["hyper_parameters"]["input_mean"] == pytest.approx([0.485, 0.456, 0.406])
    saved = yaml.safe_load((run / "hparams.yaml").read_text())
    assert saved["input_mean"] == pytest.approx([0.485, 0.456, 0.406]) and saved["mean"] is None  # not the data's
    assert state["hyper_parameters"]["class_names"] == ["cat", "dog"]
    assert json.loads((run / "metrics.json").read_text())["test/acc"] >= 0.5
    capsys.readouterr()
    run_cli("test", "--ckpt_path", "best", *common)
    assert "test/acc:" in capsys.readouterr().out


def test_efficientnet_normalises_with_its_own_statistics(photo_root, run_cli, capsys):
    with pytest.raises(SystemExit):
        run_cli("fit", "-c", "catdog_transfer", "--data.data_dir", str(photo_root), "--print_config")
    out = capsys.readouterr().out
    assert "backbone: efficientnet_lite0" in out and "mean: null" in out  # filled in at instantiation


def test_shipped_config_as_the_readme_shows_it(idx_root, run_cli):
    run_cli("fit", "-c", "mnist_mlp", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "1")
    run = next(Path("logs").glob("*/version_0"))
    assert json.loads((run / "metrics.json").read_text())["test/acc"] > 0.3
    config = (run / "config.yaml").read_text()
    assert "on_device: true" in config and "class_path: lightning_app.engine.fast_path.FastPath" in config


def test_another_logger_runs_to_the_test_in_the_runs_own_folder(idx_root, run_cli, capsys):
    """--trainer.logger CSVLogger: the run is MLP-MNIST/version_0 (not auto), CSVLogger's metrics.csv and the app's
    epochs.csv sit side by side, and the closing lines name the CSV, not TensorBoard."""
    run_cli("fit", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "2", "--trainer.logger", "CSVLogger")
    out = capsys.readouterr().out
    run = Path("logs/MLP-MNIST/version_0")
    assert "test/acc" in out and f"CSVLogger: {run / 'metrics.csv'}" in out and "TensorBoard:" not in out
    with (run / "epochs.csv").open(newline="") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["0", "1"]
    with (run / "metrics.csv").open(newline="") as handle:  # CSVLogger's own: every logged point
        steps = {row["step"] for row in csv.DictReader(handle) if row.get("val/acc")}
    assert steps == {"8", "17"}  # optimizer steps (9 an epoch), on the default path
    assert json.loads((run / "metrics.json").read_text())["test/acc"] > 0
