"""Settings read from a checkpoint are checked by type and range before any class is built, in one line for
``test``, ``predict``, the Predictor, the demo and export alike, in time linear in the file."""

from __future__ import annotations

import time

import pytest
import torch

from datamodules import CatDogDataModule, MNISTDataModule
from lightning_app.errors import CheckpointError
from lightning_app.predictor import Predictor
from lightning_app.runs.saved_settings import check_settings
from modules import MLP, TransferModel


@pytest.mark.parametrize(
    ("cls", "settings", "message"),
    [
        (MLP, {"lr": "abc"}, r"lr = 'abc', which should be a number above 0 up to 100"),
        (MLP, {"lr": float("inf")}, r"lr = inf, which should be a number above 0"),
        (MLP, {"in_features": -1}, r"in_features = -1, which should be an integer from 1"),
        (MLP, {"num_classes": True}, r"num_classes = True, which should be an integer"),
        (MLP, {"hidden": [128, "wide"]}, r"hidden = \[128, 'wide'\], which should be a width, or a list"),
        (MLP, {"class_names": list(range(30))}, r"class_names = \[0, 1, .*\.\.\., which should be a list of at most"),
        (MLP, {"class_names": ["a"] * 100_001}, r"which should be a list of at most 100,000 names"),
        (MLP, {"class_names": ["a", "b"], "num_classes": 3}, r"2 class names for 3 classes"),
        (TransferModel, {"backbone": "x" * 10_000}, r"backbone = 'xxx.*\.\.\., which should be text of at most 100"),
        (CatDogDataModule, {"image_size": 60000}, r"image_size = 60000, which should be an integer from 8 to 1,024"),
        (CatDogDataModule, {"std": [0, 0, 0]}, r"std = \[0, 0, 0\], which should be a list of 1 to 3 numbers above 0"),
        (CatDogDataModule, {"mean": "abc"}, r"mean = 'abc', which should be a list of 1 to 3 numbers"),
        (MNISTDataModule, {"batch_size": 10**9}, r"batch_size = 1000000000, which should be an integer from 1 to"),
        (MNISTDataModule, {"colour": "red"}, r"the data setting 'colour', which MNISTDataModule does not take"),
    ],
)
def test_a_setting_out_of_type_or_range_is_one_line(cls, settings, message):
    kind = "data" if "DataModule" in cls.__name__ else "model"
    with pytest.raises(CheckpointError, match=f"^run.ckpt has .*{message}") as caught:
        check_settings("run.ckpt", kind, cls, settings)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 300


def test_the_settings_fit_writes_pass_and_a_long_list_is_checked_in_linear_time():
    check_settings("run.ckpt", "model", MLP, MLP().hparams | {"class_names": [str(d) for d in range(10)]})
    check_settings("run.ckpt", "data", CatDogDataModule, dict(CatDogDataModule(data_dir="absent").hparams))
    names = [f"class {i}" for i in range(100_000)]
    start = time.perf_counter()
    check_settings("run.ckpt", "model", MLP, {"class_names": names, "num_classes": len(names)})
    assert time.perf_counter() - start < 1.0


def rewrite(ckpt, out, section: str, **changes) -> str:
    state = torch.load(ckpt, weights_only=True)
    state[section].update(changes)
    torch.save(state, out)
    return str(out)


@pytest.mark.parametrize(
    ("section", "changes", "message"),
    [
        ("hyper_parameters", {"lr": "abc"}, "lr = 'abc'"),
        ("hyper_parameters", {"num_classes": 10000}, "10 class names for 10,000 classes"),
        ("datamodule_hyper_parameters", {"colour": 1}, "the data setting 'colour'"),
    ],
)
def test_the_predictor_and_test_stop_at_the_same_line(mnist_run, idx_root, run_cli, capsys, section, changes, message):
    bad = rewrite(mnist_run / "checkpoints" / "last.ckpt", "bad.ckpt", section, **changes)
    with pytest.raises(CheckpointError, match=message):
        Predictor.load(bad)
    with pytest.raises(SystemExit) as exit_info:
        run_cli("test", "--ckpt_path", bad, "--data.data_dir", str(idx_root))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: bad.ckpt has ") and message in err[-1]


def test_ten_thousand_classes_load_in_seconds_and_weights_that_do_not_fit_are_one_line(mnist_run):
    state = torch.load(mnist_run / "checkpoints" / "last.ckpt", weights_only=True)
    names = [f"class {i}" for i in range(10_000)]
    state["state_dict"] = MLP(num_classes=10_000).state_dict()
    state["hyper_parameters"].update(num_classes=10_000, class_names=names)
    torch.save(state, "many.ckpt")
    start = time.perf_counter()
    predictor = Predictor.load("many.ckpt")
    assert time.perf_counter() - start < 10 and predictor.class_names == names
    state["hyper_parameters"].update(num_classes=20, class_names=names[:20])
    torch.save(state, "misfit.ckpt")
    with pytest.raises(CheckpointError, match="misfit.ckpt holds weights that do not fit its own settings"):
        Predictor.load("misfit.ckpt")


def test_settings_that_ask_for_gigabytes_are_one_line_before_anything_is_allocated(tmp_path):
    """hidden [32768, 32768] is 4.3 GB of weights; the checkpoint holds a small MLP's: refused on the meta device."""
    import resource
    import time

    import torch

    from lightning_app.errors import CheckpointError
    from lightning_app.runs.saved_run import read_saved_run
    from modules import MLP, ClassificationModule

    small = MLP(hidden=[8])
    path = tmp_path / "inflated.ckpt"
    hparams = {"_class_path": "modules.MLP", "hidden": [32768, 32768]}
    torch.save({"state_dict": small.state_dict(), "hyper_parameters": hparams}, path)
    before, start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    with pytest.raises(CheckpointError, match="do not fit its own settings"):
        read_saved_run(str(path), ClassificationModule, object)
    assert time.perf_counter() - start < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # kB: far below 4.3 GB
