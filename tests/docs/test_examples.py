"""The Python examples of the README and docs/ as a user types them (read from the pages), on the tiny data."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers.data import write_idx_dataset
from tests.helpers.docs import example
from tests.helpers.processes import prediction_rows


def test_docs_predictor_example(idx_root, run_cli, mnist_run, tmp_path, capsys):
    """The README's predict.py as typed, next to `predict` on the same file: the same probabilities."""
    from PIL import Image

    from tests.helpers.docs import example

    digit = np.zeros((40, 40), dtype=np.uint8)
    digit[8:32, 18:23] = 255  # a "1", white on black as MNIST draws it
    Image.fromarray(digit).save(tmp_path / "digit.png")
    capsys.readouterr()
    run_cli("predict", "--ckpt_path", "best", "--data.data_dir", str(idx_root), "--data.predict_path", "digit.png")
    (row,) = prediction_rows(capsys.readouterr().out)
    scope: dict = {}
    exec(compile(example("predict.py"), "predict.py", "exec"), scope)  # noqa: S102 - the README's own example
    printed = capsys.readouterr().out
    probabilities = scope["predictor"]("digit.png")
    assert printed.strip() == str(probabilities)
    assert probabilities == pytest.approx({d: float(row[f"p_{d}"]) for d in map(str, range(10))}, abs=1e-6)


@pytest.mark.long
def test_docs_part_5_runs_are_named_for_tensorboard(idx_root, run_cli):
    """The README's Part 5 command (one epoch on the tiny data): the run lands in logs/part5/no_dropout."""
    run_cli(
        *("fit", "-c", "fashion_classifier", "--model.lr_schedule", "constant", "--trainer.max_epochs", "1"),
        *("--model.dropout", "0", "--trainer.logger.init_args.name", "part5"),
        *("--trainer.logger.init_args.version", "no_dropout", "--data.data_dir", str(idx_root)),
    )
    run = Path("logs/part5/no_dropout")
    assert (run / "checkpoints/last.ckpt").is_file() and (run / "metrics.csv").is_file()
    assert torch.load(run / "checkpoints/last.ckpt", weights_only=True)["hyper_parameters"]["dropout"] == 0


@pytest.mark.long
def test_docs_add_your_own_data_set(tmp_path, run_cli, capsys, monkeypatch):
    """The README's KMNIST file, as one module on the path, on KMNIST-shaped files: nothing in the app changes."""
    data = write_idx_dataset(tmp_path / "kdata", "KMNIST")
    (tmp_path / "kmnist.py").write_text(example("datamodules/kmnist.py"))
    monkeypatch.syspath_prepend(str(tmp_path))
    data_flags = ["--data", "kmnist.KMNISTDataModule", "--data.data_dir", str(data)]
    run_cli("fit", *data_flags, "--trainer.max_epochs", "2")
    run = Path("logs/MLP-KMNIST/version_0")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test/acc"] > 0.5
    assert (
        torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["hyper_parameters"]["class_names"][1] == "ki"
    )
    capsys.readouterr()
    run_cli("test", "--ckpt_path", "best", *data_flags)
    assert f"test/acc: {metrics['test/acc']:.4f}" in capsys.readouterr().out
    run_cli("predict", "--ckpt_path", "best", *data_flags)
    rows = Path("logs/MLP-KMNIST/version_2/predictions/predictions.csv").read_text().splitlines()
    assert rows[0].startswith("file,predicted,p_o,p_ki") and len(rows) == 201


@pytest.mark.long
def test_docs_add_your_own_model(idx_root, tmp_path, run_cli, capsys, monkeypatch):
    (tmp_path / "cnn.py").write_text(example("modules/cnn.py"))
    monkeypatch.syspath_prepend(str(tmp_path))
    run_cli("fit", "--model", "cnn.SmallCNN", "--model.channels", "4", "--data.data_dir", str(idx_root))
    assert json.loads(Path("logs/SmallCNN-MNIST/version_0/metrics.json").read_text())["test/acc"] > 0.5
    capsys.readouterr()
    run_cli("test", "--ckpt_path", "best", "--model", "cnn.SmallCNN", "--data.data_dir", str(idx_root))
    assert "test/acc:" in capsys.readouterr().out


def test_docs_script_without_the_command_line(idx_root, tmp_path, monkeypatch):
    """The README's train.py as typed (on the tiny data): a plain Trainer fits, tests the best checkpoint, and the
    checkpoint loads with weights_only=True into an MLP that predicts like the trained one."""
    monkeypatch.chdir(tmp_path)
    code = example("train.py").replace('data_dir="data"', f'data_dir="{idx_root}"')
    assert code != example("train.py")
    scope: dict = {}
    exec(compile(code, "train.py", "exec"), scope)  # noqa: S102 - the README's own example
    trainer, model = scope["trainer"], scope["model"]
    assert trainer.lightning_module.step_engine is not None and trainer.global_step == 5 * 9
    assert trainer.callback_metrics["test/acc"] > 0.5
    best = Path(trainer.checkpoint_callback.best_model_path)
    assert best.is_relative_to(tmp_path / "lightning_logs") and type(model).__name__ == "MLP"
    saved = torch.load(best, weights_only=True)["state_dict"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key


@pytest.mark.long
def test_a_stream_written_with_litdata_directly(tmp_path, monkeypatch):
    """docs/stream_format.md's write_stream.py, run as a user would, makes a stream the app reads and trains on."""
    import subprocess
    import sys

    from datamodules import StreamingImageDataModule
    from tests.helpers.data import CATS_DOGS, write_photo_folder

    pytest.importorskip("litdata")
    write_photo_folder(tmp_path / "photos", CATS_DOGS)
    for png in (tmp_path / "photos").rglob("*.png"):  # the example reads JPEGs
        from PIL import Image

        Image.open(png).convert("RGB").save(png.with_suffix(".jpg"))
        png.unlink()
    (tmp_path / "write_stream.py").write_text(example("write_stream.py"))
    done = subprocess.run(
        [sys.executable, "write_stream.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = StreamingImageDataModule(data_dir=str(tmp_path / "stream"), batch_size=4, num_workers=0, image_size=32)
    data.setup("fit")
    images = torch.cat([x for x, _ in data.train_dataloader()])
    assert data.class_names == ["cat", "dog"] and len(images) == data.index["counts"]["train"] > 0
    got, labels, _ = data.feature_inputs("val")  # read by position, each sample checked against dataset.json
    assert len(got) == len(labels) == data.index["counts"]["val"]
