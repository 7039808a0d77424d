"""Checkpoints are data: a malicious pickle does not run, another model's is refused, writes are whole."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lightning_app.runs.checkpoint_writer import AtomicCheckpointIO
from tests.helpers.processes import ROOT


class RunsCode:
    """Unpickling this calls os.system: the classic malicious 'checkpoint'."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_does_not_run(run_cli, tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    with evil.open("wb") as handle:
        pickle.dump({"state_dict": RunsCode(marker)}, handle)
    with pytest.raises(SystemExit) as exit_info:
        run_cli("test", "--ckpt_path", str(evil))
    assert exit_info.value.code == 2 and not marker.exists()
    assert "not a file this app can load safely" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the same for backbone weights
        run_cli(
            "fit",
            "--model",
            "TransferModel",
            "--model.backbone",
            "resnet18",
            "--model.weights",
            str(evil),
            "--data",
            "CatDogDataModule",
            "--data.data_dir",
            str(tmp_path),
        )
    assert not marker.exists()


@pytest.mark.long  # a transfer fit on the tiny photos
def test_a_photo_folder_with_other_classes_names_the_folder_the_checkpoint_was_trained_on(
    photo_root, run_cli, tmp_path, capsys
):
    """Issue 33: the hint said "use the --data it was trained with" where --data.data_dir was meant."""
    from tests.helpers.data import transfer_fit_args, write_photo_folder

    run_cli(*transfer_fit_args(photo_root))
    other = write_photo_folder(tmp_path / "three", {"a": (200, 0, 0), "b": (0, 200, 0), "c": (0, 0, 200)}, 4)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        run_cli("test", "--ckpt_path", "last", "--data.data_dir", str(other), "--data.num_workers", "0")
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "made for 2 classes and this data has 3: point --data.data_dir at the data it was trained on" in err
    assert str(photo_root) in err


def test_a_checkpoint_of_another_model_is_refused(idx_root, photo_root, run_cli, mnist_run, capsys):
    mlp = "logs/MLP-MNIST/version_0/checkpoints/last.ckpt"
    with pytest.raises(SystemExit) as exit_info:  # 10 classes of MNIST against 2 of cats and dogs
        run_cli(
            "test",
            "--ckpt_path",
            mlp,
            "--data",
            "CatDogDataModule",
            "--data.data_dir",
            str(photo_root),
            "--data.num_workers",
            "0",
        )
    assert exit_info.value.code == 2
    assert "last.ckpt was made for 10 classes and this data has 2: use the --data it was trained with" in (
        capsys.readouterr().err
    )


def test_checkpoints_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1}, path)
    real_save = torch.save

    def dies_half_way(obj, handle):
        handle.write(b"partial bytes")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": 2}, path)
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_photo_folder_runs_carry_the_folders_name():
    from lightning_app.runs.checkpoints import run_name

    assert run_name("modules.MLP", "datamodules.MNISTDataModule") == "MLP-MNIST"
    assert (
        run_name("modules.TransferModel", "datamodules.CatDogDataModule", "data/flowers")
        == "TransferModel-CatDog-flowers"
    )
    named = run_name("modules.TransferModel", "datamodules.CatDogDataModule", "../shared/datasets/cats_dogs/train/")
    assert named == "TransferModel-CatDog-cats_dogs"  # train/ is the split, its parent the photos
    assert run_name("modules.TransferModel", "datamodules.CatDogDataModule", "x/\x1b[2J\n") == "TransferModel-CatDog-2J"


def test_best_finds_runs_named_before_and_after_the_folder(tmp_path):
    """Runs written before photo folders were in the name (TransferModel-CatDog) are still found by --data."""
    import os

    from lightning_app.runs.checkpoints import newest_last_checkpoint, run_name

    old = tmp_path / "TransferModel-CatDog/version_0/checkpoints/last.ckpt"
    new = tmp_path / "TransferModel-CatDog-flowers/version_0/checkpoints/last.ckpt"
    for i, path in enumerate((new, old)):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
        os.utime(path, (i, i))
    name = run_name("modules.TransferModel", "datamodules.CatDogDataModule")
    assert newest_last_checkpoint(tmp_path, name) == old


def test_best_of_a_model_alone_finds_its_runs(tmp_path):
    from lightning_app.runs.checkpoints import newest_last_checkpoint, run_name

    path = tmp_path / "SmallCNN-MNIST/version_0/checkpoints/last.ckpt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")
    assert newest_last_checkpoint(tmp_path, run_name("cnn.SmallCNN", None)) == path  # the pattern SmallCNN-*


FULL_DISK = """
import resource, runpy, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails as on a full disk, not by a signal
resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))
sys.argv = ["lightning_app", *sys.argv[1:]]
runpy.run_module("lightning_app", run_name="__main__")
"""


@pytest.mark.long
def test_a_full_disk_while_saving_a_checkpoint_is_one_line(idx_root, tmp_path):
    """Issue 32: torch's zip writer reports a failed write as ``RuntimeError: ... unexpected pos``, a 70-line
    traceback; a file size limit makes every write past 300 kB fail as a full disk does."""
    run = subprocess.run(
        [sys.executable, "-c", FULL_DISK, "fit", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "1"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2, run.stderr[-2000:]
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "could not write the checkpoint" in errors[0] and "free some space" in errors[0]
    assert "Traceback" not in run.stderr
