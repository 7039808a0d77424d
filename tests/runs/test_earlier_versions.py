"""What users already have keeps working: a checkpoint and run configs written by version 0.1.0 (main at 5bd881c,
before lightning_app/ was grouped into folders), committed under tests/data/v0.1.0."""

import shutil
from pathlib import Path

import pytest
import torch

SAVED = Path(__file__).parent / "data" / "v0.1.0"


def test_an_earlier_checkpoint_tests_predicts_and_resumes(idx_root, run_cli, tmp_path, capsys):
    ckpt = str(shutil.copy(SAVED / "mlp_mnist_last.ckpt", tmp_path / "old.ckpt"))
    run_cli("test", "--ckpt_path", ckpt, "--data.data_dir", str(idx_root))
    assert "test/acc:" in capsys.readouterr().out
    run_cli("predict", "--ckpt_path", ckpt, "--data.data_dir", str(idx_root))
    assert "predictions: " in capsys.readouterr().out
    run_cli("fit", "--ckpt_path", ckpt, "--data.data_dir", str(idx_root), "--trainer.max_epochs", "2")
    state = torch.load(next(Path("logs").rglob("last.ckpt")), weights_only=True)
    assert state["epoch"] == 1 and state["hyper_parameters"]["hidden"] == [16]


def test_an_earlier_checkpoint_loads_in_python_and_in_the_predictor(idx_root):
    from lightning_app import Predictor
    from modules import MLP

    model = MLP.load_from_checkpoint(SAVED / "mlp_mnist_last.ckpt", weights_only=True)
    assert model.hparams.hidden == [16] and model.num_classes == 10
    answer = Predictor.load(str(SAVED / "mlp_mnist_last.ckpt"))(torch.zeros(1, 28, 28, dtype=torch.uint8))
    assert sorted(answer) == [str(i) for i in range(10)] and abs(sum(answer.values()) - 1) < 1e-5


def test_an_earlier_run_config_trains_again(idx_root, run_cli, capsys):
    run_cli("fit", "-c", str(SAVED / "mlp_mnist_config.yaml"), "--data.data_dir", str(idx_root))
    assert "test/acc:" in capsys.readouterr().out
    saved = Path("logs/MLP-MNIST/version_0/config.yaml").read_text()
    assert "hidden:\n    - 16" in saved


def test_earlier_transfer_and_finetuning_configs_still_parse(run_cli, capsys):
    for name in ("catdog_transfer_config.yaml", "catdog_finetune_config.yaml"):
        with pytest.raises(SystemExit):
            run_cli("fit", "-c", str(SAVED / name), "--print_config")
        printed = capsys.readouterr().out
        assert "FeatureCache" in printed or "StagedFinetuning" in printed
        assert "AtomicCheckpointIO" in printed and "FastPath" in printed


def test_earlier_import_paths_lead_to_the_classes_new_homes():
    from lightning_app.fast_path import FastPath as OldFastPath
    from lightning_app.safety import AtomicCheckpointIO, StopOnNonFiniteLoss

    from lightning_app.callbacks import FeatureCache as OldFeatureCache
    from lightning_app.engine.fast_path import FastPath
    from lightning_app.engine.feature_cache import FeatureCache

    assert OldFastPath is FastPath and OldFeatureCache is FeatureCache
    assert AtomicCheckpointIO.__module__ == "lightning_app.runs.checkpoint_writer"
    assert StopOnNonFiniteLoss.__module__ == "lightning_app.callbacks.nan_check"
    with pytest.raises(ImportError):
        from lightning_app.safety import NoSuchThing  # noqa: F401


def test_a_transfer_checkpoint_of_0_1_0_keeps_its_normalisation(tmp_path):
    """0.1.0 kept a transfer model's normalisation (the backbone's, or the user's) in the data settings: the model
    takes it from there, so the Predictor feeds the backbone what it was trained on."""
    import torch

    from lightning_app import Predictor
    from modules import TransferModel

    model = TransferModel(backbone="resnet18", weights="none", hidden=8)
    hparams = {k: v for k, v in model.hparams.items() if k not in ("input_mean", "input_std")}
    data = {"_class_path": "datamodules.CatDogDataModule", "image_size": 32, "mean": [0.1, 0.2, 0.3], "std": [0.5] * 3}
    path = tmp_path / "old.ckpt"
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": {"_class_path": "modules.TransferModel", **hparams},
            "datamodule_hyper_parameters": data,
        },
        path,
    )
    predictor = Predictor.load(str(path))
    assert predictor.model.input_mean == [0.1, 0.2, 0.3]
    assert predictor.datamodule.mean.flatten().tolist() == pytest.approx([0.1, 0.2, 0.3])
