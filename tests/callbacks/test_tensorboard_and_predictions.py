"""What a run shows: a real TensorBoard server reads back its scalars, images and hparams; predict writes a
CSV and pictures for the user's own files."""

import csv
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from PIL import Image

from lightning_app.predictor import Predictor
from tests.helpers.data import CATS_DOGS, tiny_photo_args, transfer_fit_args, write_photo_folder
from tests.helpers.processes import free_port


def get_json(url: str, data: bytes | None = None):
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def tensorboard_server():
    procs = []

    def start(logdir: Path) -> str:
        port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(logdir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--reload_interval",
            "1",
        ]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if get_json(f"{base}/data/plugin/scalars/tags"):
                    return base
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError("TensorBoard did not answer within 60 s")

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.long  # a TensorBoard server: about 5 s
def test_tensorboard_serves_curves_images_and_hparams(idx_root, run_cli, tensorboard_server):
    run_cli("fit", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "2")
    base = tensorboard_server(Path("logs"))
    deadline = time.time() + 30
    while True:  # the server loads event files in the background
        scalars = get_json(f"{base}/data/plugin/scalars/tags")
        images = get_json(f"{base}/data/plugin/images/tags")
        tags = {t for run in scalars.values() for t in run}
        image_tags = {t for run in images.values() for t in run}
        if {"val/predictions", "test/confusion_matrix"} <= image_tags or time.time() > deadline:
            break
        time.sleep(1)
    for tag in ("train/loss", "train/acc", "val/loss", "val/acc", "test/acc", "lr-Adam", "hp/test_acc"):
        assert tag in tags, tag
    assert {"val/predictions", "test/confusion_matrix"} <= image_tags
    layout = get_json(f"{base}/data/plugin/custom_scalars/layout")
    assert "curves" in json.dumps(layout)
    experiment = get_json(f"{base}/data/plugin/hparams/experiment", json.dumps({"experimentName": ""}).encode())
    hparam_names = {h["name"] for h in experiment["hparamInfos"]}
    metric_tags = {m["name"]["tag"] for m in experiment["metricInfos"]}
    assert {"model/lr", "data/batch_size"} <= hparam_names
    assert "hp/test_acc" in metric_tags


def test_predict_on_user_files_writes_csv_and_pictures(idx_root, run_cli, mnist_run, tmp_path, capsys):
    photos = write_photo_folder(tmp_path / "mine", CATS_DOGS, per_class=3)  # RGB/grey/RGBA/palette, any size
    capsys.readouterr()
    run_cli("predict", "--ckpt_path", "last", "--data.data_dir", str(idx_root), "--data.predict_path", str(photos))
    out = capsys.readouterr().out
    csv_path = Path(out.split("predictions: ")[1].split()[0])
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 6 and {Path(r["file"]).parent.name for r in rows} == {"cat", "dog"}
    for row in rows:
        probs = [float(row[f"p_{d}"]) for d in range(10)]
        assert abs(sum(probs) - 1) < 1e-4 and row["predicted"] == str(probs.index(max(probs)))
    # the Python predictor gives the same numbers for the same files (the CSV holds 6 decimals)
    expected = torch.tensor([[float(row[f"p_{d}"]) for d in range(10)] for row in rows])
    got = Predictor.load("last").probabilities([row["file"] for row in rows])
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    pngs = sorted(csv_path.parent.glob("*.png"))
    assert len(pngs) == 6
    for png in pngs:
        with Image.open(png) as image:
            image.verify()
            assert image.format == "PNG"


def test_predict_on_a_single_photo_with_the_transfer_model(photo_root, run_cli, tmp_path, capsys):
    common = tiny_photo_args(photo_root)
    run_cli(*transfer_fit_args(photo_root, epochs=1))
    photo = next((photo_root / "dog").glob("*.jpg"))
    capsys.readouterr()
    run_cli("predict", "--ckpt_path", "last", *common, "--data.predict_path", str(photo))
    csv_path = Path(capsys.readouterr().out.split("predictions: ")[1].split()[0])
    (row,) = list(csv.DictReader(csv_path.open()))
    assert row["file"] == str(photo) and row["predicted"] in ("cat", "dog")
    assert abs(float(row["p_cat"]) + float(row["p_dog"]) - 1) < 1e-4
    # the Python predictor reads the photo as predict did, with the checkpoint's image size and normalisation
    assert Predictor.load("last")(photo) == pytest.approx(
        {"cat": float(row["p_cat"]), "dog": float(row["p_dog"])}, abs=1e-6
    )
    # issue 33: the training photos moved away, predict on one's own photo needs only the checkpoint
    mine = tmp_path / "mine.jpg"
    mine.write_bytes(photo.read_bytes())
    photo_root.rename(tmp_path / "moved")
    run_cli("predict", "--ckpt_path", "last", "--data.predict_path", str(mine), "--data.num_workers", "0")
    csv_path = Path(capsys.readouterr().out.split("predictions: ")[1].split()[0])
    (again,) = list(csv.DictReader(csv_path.open()))
    assert again["predicted"] == row["predicted"] and float(again["p_cat"]) == pytest.approx(float(row["p_cat"]))


@pytest.mark.long  # moved out of the 2-minute suite (several fits)
def test_prediction_pictures_are_drawn_by_the_clock_and_after_the_last_epoch(idx_root, run_cli, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_cli("fit", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "4")
    events = EventAccumulator(str(tmp_path / "logs" / "MLP-MNIST" / "version_0")).Reload()
    steps = [event.step for event in events.Images("val/predictions")]
    assert steps == [9, 36]  # after epoch 1, then after epoch 4: the run is shorter than the 10 s interval


def test_the_confusion_matrix_figure_is_torchmetrics_plot_of_the_counts():
    """figures.confusion_matrix_figure: every count written in its cell, the class names on both axes."""
    from lightning_app import figures

    counts = torch.tensor([[5, 1, 0], [2, 7, 1], [0, 3, 9]])
    fig = figures.confusion_matrix_figure(counts, ["cat", "dog", "fox"])
    ax = fig.axes[0]
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert cells == {(i, j): str(int(counts[i, j])) for i in range(3) for j in range(3)}  # row true, column predicted
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "fox"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog", "fox"]
    assert ax.get_title() == "Confusion matrix (accuracy 75.00%)"
    assert fig.canvas.manager is None  # not a pyplot figure: nothing to close in the user's pyplot
