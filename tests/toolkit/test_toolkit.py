"""The practitioner's toolkit: lr_find, interpret, export to ONNX and the Python Predictor."""

import csv
import json
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules import MNISTDataModule
from lightning_app.errors import MissingExtra, require
from lightning_app.predictor import Predictor
from lightning_app.toolkit.interpret import confused_pairs, per_class_scores
from lightning_app.toolkit.lr_find import fit_command
from modules import MLP
from tests.helpers.data import tiny_photo_args, transfer_fit_args, write_photo_folder
from tests.helpers.onnx_input import input_from_metadata

RUN = Path("logs/MLP-MNIST/version_0")


def test_fit_command_keeps_the_users_flags_and_sets_the_rate():
    argv = ["lr_find", "-c", "mnist_mlp", "--num_training", "50", "--model.lr=0.1", "--max_lr", "2", "--mode=linear"]
    assert fit_command(argv, 0.012345) == "python -m lightning_app fit -c mnist_mlp --model.lr 0.0123"


@pytest.mark.long  # 5 s: the range test, then the fit it prints
def test_lr_find_plots_suggests_and_prints_a_fit_command_that_runs(idx_root, run_cli, capsys, tmp_path, monkeypatch):
    loads = []
    real_load = torch.load

    def recording_load(*args, **kwargs):
        loads.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    run_cli("lr_find", "--data.data_dir", str(idx_root), "--num_training", "40")
    out = capsys.readouterr().out
    suggested = float(out.split("suggested learning rate: ")[1].split()[0])
    assert 1e-6 < suggested < 1
    # Lightning's finder saved and restored a temporary checkpoint: read as data, and removed
    assert loads and all(flag is True for flag in loads)
    assert not list(tmp_path.rglob(".lr_find*")) and not list(tmp_path.rglob("*.ckpt"))
    assert sorted(p.name for p in RUN.iterdir() if not p.name.startswith("events")) == [
        "config.yaml",
        "hparams.yaml",
        "lr_find.csv",
        "lr_find.png",
    ]
    rows = list(csv.DictReader((RUN / "lr_find.csv").open()))
    rates = [float(r["lr"]) for r in rows]
    assert len(rows) >= 10 and rates == sorted(rates) and rates[0] == pytest.approx(1e-6)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert "lr_find" in EventAccumulator(str(RUN)).Reload().Tags()["images"]
    # the printed command, as a user pastes it
    command = shlex.split(out.split("train with it: ")[1].splitlines()[0])
    assert command[:4] == ["python", "-m", "lightning_app", "fit"]
    run_cli(*command[3:], "--trainer.max_epochs", "1")
    hparams = torch.load(Path("logs/MLP-MNIST/version_1/checkpoints/last.ckpt"), weights_only=True)
    assert hparams["hyper_parameters"]["lr"] == pytest.approx(suggested, rel=1e-2)


def test_per_class_scores_and_confused_pairs_by_hand():
    names = ["cat", "dog", "fox"]
    targets = torch.tensor([0, 0, 0, 1, 1, 2])
    preds = torch.tensor([0, 1, 1, 1, 0, 2])
    log_probs = torch.nn.functional.one_hot(preds, 3).float().add(0.1).log()
    rows = {row[0]: row[1:] for row in per_class_scores(log_probs, targets, names)}
    # cat: predicted 2x, right 1x (precision 1/2), 3 true (recall 1/3), F1 = 2pr/(p+r) = 0.4
    assert rows["cat"] == ["0.5000", "0.3333", "0.4000", 3]
    assert rows["dog"] == ["0.3333", "0.5000", "0.4000", 2]
    assert rows["fox"] == ["1.0000", "1.0000", "1.0000", 1]
    assert confused_pairs(log_probs, targets, names) == [["cat", "dog", 2], ["dog", "cat", 1]]


def test_interpret_names_the_test_images_with_the_highest_loss(idx_root, run_cli, mnist_run, capsys):
    capsys.readouterr()
    run_cli("interpret", "--ckpt_path", "best", "--data.data_dir", str(idx_root), "--top_k", "5")
    out = capsys.readouterr().out
    folder = Path("logs/MLP-MNIST/version_1/interpretation")
    assert f"interpretation: {folder}" in out and "test/acc:" in out
    assert {p.name for p in folder.iterdir()} == {
        "top_losses.png",
        "top_losses.csv",
        "confused_pairs.csv",
        "per_class.csv",
    }
    # recomputed independently: the checkpoint through the datamodule's test split
    model = MLP.load_from_checkpoint(
        json.loads((mnist_run / "metrics.json").read_text())["best_model_path"], weights_only=True
    ).eval()
    data = MNISTDataModule(data_dir=str(idx_root))
    data.setup("test")
    x, y = data.test_set.images, data.test_set.labels
    with torch.no_grad():
        losses = torch.nn.functional.nll_loss(model(data.normalize(x)), y, reduction="none")
    worst = losses.topk(5).indices.tolist()
    top = list(csv.DictReader((folder / "top_losses.csv").open()))
    assert [r["sample"] for r in top] == [f"test[{i}]" for i in worst]
    assert [float(r["loss"]) for r in top] == pytest.approx(losses[worst].tolist(), abs=1e-3)
    per_class = list(csv.DictReader((folder / "per_class.csv").open()))
    assert sum(int(r["support"]) for r in per_class) == len(y) and len(per_class) == 10


def test_a_missing_extra_says_what_to_install():
    with pytest.raises(MissingExtra, match=r"export needs the package no_such_onnx: pip install -e '\.\[export\]'"):
        require("no_such_onnx", "export", "export")


def onnx_session(path: Path):
    onnxruntime = pytest.importorskip("onnxruntime")
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.long  # the dynamo exporter takes about 5 s
def test_export_runs_in_onnxruntime_like_the_predictor(idx_root, run_cli, mnist_run, tmp_path, capsys):
    photos = write_photo_folder(tmp_path / "mine", {"a": (200, 200, 200), "b": (20, 20, 20)}, per_class=2)
    files = sorted(photos.rglob("*.jpg"))
    capsys.readouterr()
    run_cli("export", "--ckpt_path", "best")
    out = capsys.readouterr().out
    path = Path(out.split("exported: ")[1].split()[0])
    assert path.parent == mnist_run / "export" and path.suffix == ".onnx"
    difference = float(out.split("max abs difference ")[1].split()[0])
    assert difference < 1e-5
    session = onnx_session(path)
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["class_names"]) == [str(d) for d in range(10)] and meta["color"] == "grey"
    predictor = Predictor.load("best")
    pixels = predictor.inputs(files).float().div(255).numpy()
    got = session.run(["probabilities"], {"pixels": pixels})[0]
    np.testing.assert_allclose(got, predictor.probabilities(files).numpy(), atol=1e-5)
    assert got.shape == (len(files), 10)
    assert_metadata_is_data(session, files, predictor)


def assert_metadata_is_data(session, files: list[Path], predictor: Predictor) -> None:
    """Issue 33: the preprocessing is JSON numbers without a machine path, and PIL and numpy alone rebuild from
    it the input the Predictor makes (to the rounding of two resize implementations)."""
    meta = session.get_modelmeta().custom_metadata_map
    assert "/" not in meta["checkpoint"] and "Resize(" not in "".join(meta.values())
    made = np.stack([input_from_metadata(f, meta) for f in files])
    expected = predictor.inputs(files).float().div(255).numpy()
    assert made.shape == expected.shape
    assert np.abs(made - expected).mean() < 0.01 and np.abs(made - expected).max() < 0.1
    probabilities = session.run(["probabilities"], {"pixels": made})[0]
    np.testing.assert_allclose(probabilities, predictor.probabilities(files).numpy(), atol=0.02)


@pytest.mark.long  # a ResNet-18 through the dynamo exporter: about 15 s
def test_export_of_a_transfer_model(photo_root, run_cli, tmp_path, capsys):
    run_cli(*transfer_fit_args(photo_root, epochs=1))
    capsys.readouterr()
    target = tmp_path / "out" / "catdog.onnx"
    run_cli("export", "--ckpt_path", "last", "--output", str(target))
    assert float(capsys.readouterr().out.split("max abs difference ")[1].split()[0]) < 1e-4
    session = onnx_session(target)
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["class_names"]) == ["cat", "dog"] and meta["color"] == "RGB"
    assert session.get_inputs()[0].shape[1:] == [3, 32, 32]
    photo = next((photo_root / "dog").glob("*.jpg"))
    predictor = Predictor.load("last")
    got = session.run(["probabilities"], {"pixels": predictor.inputs([photo]).float().div(255).numpy()})[0]
    np.testing.assert_allclose(got, predictor.probabilities([photo]).numpy(), atol=1e-5)
    assert_metadata_is_data(session, sorted((photo_root / "dog").glob("*.jpg")), predictor)


@pytest.mark.long  # three short fits of a ResNet-18 on tiny photos: about 10 s
def test_staged_finetuning_unfreezes_the_backbone_and_keeps_batchnorm_statistics(photo_root, run_cli):
    args = ["fit", "-c", "catdog_finetune", "--model.backbone", "resnet18", "--model.weights", "none"]
    args += [*tiny_photo_args(photo_root), "--data.batch_size", "4"]
    last = Path("logs/TransferModel-CatDog-photos/version_0/checkpoints/last.ckpt")

    def state(epochs: int) -> dict:
        extra = ["--ckpt_path", str(last)] if epochs > 1 else []
        run_cli(*args, "--trainer.max_epochs", str(epochs), *extra)
        return torch.load(last, weights_only=True)

    frozen, unfrozen, resumed = state(1), state(2), state(3)  # epoch 0 frozen; 1 unfreezes; 2 after a resume
    conv, bn = "backbone.conv1.weight", "backbone.bn1"
    assert len(frozen["optimizer_states"][0]["param_groups"]) == 1
    assert len(unfrozen["optimizer_states"][0]["param_groups"]) == 2  # the backbone's, added at epoch 1
    assert not torch.equal(unfrozen["state_dict"][conv], frozen["state_dict"][conv])
    assert not torch.equal(resumed["state_dict"][conv], unfrozen["state_dict"][conv])  # still trains after resume
    for name in ("weight", "bias", "running_mean", "running_var"):  # BatchNorm as it was, by design
        torch.testing.assert_close(resumed["state_dict"][f"{bn}.{name}"], frozen["state_dict"][f"{bn}.{name}"])


def test_export_to_a_folder_or_an_unwritable_place_is_one_line_and_leaves_nothing(run_cli, mnist_run, capsys):
    pytest.importorskip("onnx")
    Path("afile").write_text("a file where a folder should be")
    for output, message in (
        ("logs", "error: --output logs is a folder: name the .onnx file to write, e.g. logs/model.onnx"),
        ("afile/model.onnx", "error: cannot make the folder afile (File exists): pass --output in a folder you can"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            run_cli("export", "--ckpt_path", "best", "--output", output)
        err = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2 and err.startswith(message) and len(err.splitlines()) == 1, err
    assert not list(Path(".").rglob("*.onnx")) and not list(Path(".").rglob(".*.tmp"))


@pytest.mark.parametrize("epochs", ["0", "-5"])
def test_lr_find_with_no_epochs_is_one_line(idx_root, run_cli, capsys, epochs):
    with pytest.raises(SystemExit) as exit_info:
        run_cli("lr_find", "--data.data_dir", str(idx_root), "--trainer.max_epochs", epochs)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1, err
    assert "max_epochs" in err
