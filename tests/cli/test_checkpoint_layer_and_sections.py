"""The command line keeps its word: no rewritten arguments, no dropped flags, configurable callbacks, and a new
data set added without touching the face."""

from pathlib import Path

import pytest
import torch

RUN = Path("logs/MLP-MNIST/version_0")
LAST = str(RUN / "checkpoints" / "last.ckpt")


def fit_args(idx_root, *extra: str) -> list[str]:
    return ["fit", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "1", *extra]


def exit_2(run_cli, capsys, *args: str) -> str:
    """Run a command that must fail: its one-line error."""
    with pytest.raises(SystemExit) as exit_info:
        run_cli(*args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and "Traceback" not in "\n".join(err)
    return err[-1]


def test_resume_refuses_a_changed_model_setting_and_honours_the_rest(idx_root, run_cli, mnist_run, capsys):
    for flags, named in (
        (["--model.lr", "0.5"], "--model.lr 0.5 (the checkpoint has 0.003)"),
        (["--model.lr_schedule", "constant"], "--model.lr_schedule 'constant' (the checkpoint has 'cosine')"),
        (["-c", "fashion_classifier"], "was made by modules.MLP, not modules.Classifier"),
    ):
        err = exit_2(run_cli, capsys, *fit_args(idx_root, "--ckpt_path", "last", "--trainer.max_epochs", "2", *flags))
        assert named in err
    assert "--model.init_from" in exit_2(
        run_cli, capsys, *fit_args(idx_root, "--ckpt_path", "last", "--trainer.max_epochs", "2", "--model.lr", "0.5")
    )
    err = exit_2(run_cli, capsys, *fit_args(idx_root, "--ckpt_path", "last"))  # max_epochs 1: already done
    assert "has already trained 1 epoch(s), and --trainer.max_epochs is 1" in err
    assert torch.load(LAST, weights_only=True)["epoch"] == 0 and not Path("logs/MLP-MNIST/version_1").exists()
    # a resume that honours --trainer.max_epochs and an unchanged --model.lr: test_cli.py's resume test


def test_init_from_starts_a_new_run_from_saved_weights_with_new_settings(idx_root, run_cli, mnist_run, capsys):
    saved = torch.load(LAST, weights_only=True)["state_dict"]
    run_cli(*fit_args(idx_root, "--model.init_from", LAST, "--model.lr", "1e-12", "--model.lr_schedule", "constant"))
    new = torch.load("logs/MLP-MNIST/version_1/checkpoints/last.ckpt", weights_only=True)
    assert new["hyper_parameters"]["lr"] == 1e-12 and new["global_step"] == 9  # a fresh run: 9 steps, epoch 0
    for key, value in saved.items():  # a rate of 1e-12 leaves the loaded weights where they were
        torch.testing.assert_close(new["state_dict"][key], value, rtol=0, atol=1e-6)
    err = exit_2(run_cli, capsys, *fit_args(idx_root, "--model", "Classifier", "--model.init_from", LAST))
    assert "do not fit this model (shapes differ: net.1.weight (128, 784) vs (256, 784)" in err
    assert not Path("logs/Classifier-MNIST").exists()  # refused before a run folder was made
    assert "weights file nope.ckpt does not exist" in exit_2(
        run_cli, capsys, *fit_args(idx_root, "--model.init_from", "nope.ckpt")
    )


@pytest.mark.long  # moved out of the 2-minute suite (several fits)
def test_evaluating_a_checkpoint_says_which_model_flags_it_ignored(idx_root, run_cli, mnist_run, capsys):
    capsys.readouterr()
    run_cli("test", "--ckpt_path", "best", "--data.data_dir", str(idx_root), "--model.lr", "0.5")
    captured = capsys.readouterr()
    assert "note: ignored --model.lr 0.5 (the checkpoint has 0.003): test uses the checkpoint's model" in captured.err
    assert "test/acc:" in captured.out
    err = exit_2(
        run_cli, capsys, "test", "--ckpt_path", LAST, "--model", "Classifier", "--data.data_dir", str(idx_root)
    )
    assert "was made by modules.MLP, not modules.Classifier" in err


def test_a_checkpoint_cannot_import_a_module_or_steer_where_data_is_read(
    idx_root, run_cli, mnist_run, capsys, tmp_path, monkeypatch
):
    monkeypatch.syspath_prepend(str(tmp_path))  # evil_mod.py below would be importable
    state = torch.load(LAST, weights_only=True)
    state["datamodule_hyper_parameters"]["num_workers"] = 24
    state["datamodule_hyper_parameters"]["data_dir"] = str(tmp_path / "elsewhere")
    state["datamodule_hyper_parameters"]["max_pixels"] = 10**12
    torch.save(state, "steered.ckpt")
    run_cli("test", "--ckpt_path", "steered.ckpt", "--data.data_dir", str(idx_root))
    assert not (tmp_path / "elsewhere").exists()
    config = (Path("logs/MLP-MNIST/version_1/config.yaml")).read_text()
    assert "num_workers: 0" in config and "val_split: 0.1" in config and "max_pixels: 100000000" in config
    (tmp_path / "evil_mod.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\n")
    state["hyper_parameters"]["_class_path"] = "evil_mod.Model"
    torch.save(state, "evil.ckpt")
    err = exit_2(run_cli, capsys, "test", "--ckpt_path", "evil.ckpt", "--data.data_dir", str(idx_root))
    assert "names the class 'evil_mod.Model', which this app has not loaded" in err
    assert not (tmp_path / "ran").exists()


def test_the_apps_callbacks_are_config_sections(idx_root, run_cli, capsys):
    with pytest.raises(SystemExit):
        run_cli("fit", "--print_config")
    config = capsys.readouterr().out
    for section in (
        "checkpoint:",
        "last_checkpoint:",
        "metrics_json:",
        "tensorboard_views:",
        "learning_rate:",
        "prediction_writer:",
        "epoch_timer:",
        "nan_check:",
        "progress_bar:",
        "checkpoint_io:",
    ):
        assert f"\n{section}" in config, section
    assert "every_s: 10.0" in config and "check_every: 50" in config and "interval: 0.5" in config
    switched = ["--metrics_json", "null", "--tensorboard_views.every_s", "0", "--nan_check.check_every", "3"]
    run_cli(*fit_args(idx_root, *switched, "--progress_bar", "TQDMProgressBar", "--checkpoint_io", "null"))
    saved = (RUN / "config.yaml").read_text()
    assert "metrics_json: null" in saved and "every_s: 0.0" in saved and "check_every: 3" in saved
    assert "TQDMProgressBar" in saved and "checkpoint_io: null" in saved
    assert not (RUN / "metrics.json").exists() and (RUN / "checkpoints" / "last.ckpt").is_file()


def test_parser_errors_are_one_line(idx_root, run_cli, capsys):
    cases = {
        ("--trainer.max_epochs", "abc"): 'Parser key "trainer.max_epochs"',
        ("--bogus",): "unknown flag --bogus (see `python -m lightning_app fit --help`)",
        ("-c", "nosuch"): "config 'nosuch' is neither a file nor a shipped config",
    }
    for flags, message in cases.items():
        assert message in exit_2(run_cli, capsys, "fit", "--data.data_dir", str(idx_root), *flags)


@pytest.mark.parametrize("batch_size", [pytest.param("128", marks=pytest.mark.long), "32"])
def test_a_resume_with_another_batch_size_or_more_epochs_still_decays_to_zero(idx_root, run_cli, mnist_run, batch_size):
    first = torch.load(LAST, weights_only=True)
    assert first["epoch"] == 0 and first["optimizer_states"][0]["param_groups"][0]["lr"] < 1e-9
    run_cli(
        "fit",
        "--ckpt_path",
        "last",
        "--data.data_dir",
        str(idx_root),
        "--trainer.max_epochs",
        "3",
        "--data.batch_size",
        batch_size,
    )
    state = torch.load(LAST, weights_only=True)
    steps = -(-540 // int(batch_size))  # 600 training images less 10% validation, per epoch
    assert state["epoch"] == 2 and state["global_step"] == first["global_step"] + 2 * steps
    assert state["optimizer_states"][0]["param_groups"][0]["lr"] < 1e-9  # the decay ends with the run
    assert state["lr_schedulers"][0]["total"] == first["global_step"] + 2 * steps


def test_a_checkpoint_from_before_the_fast_path_section_still_tests(idx_root, run_cli, mnist_run, capsys):
    """Runs saved when the fast path was a model setting (``step_batch``, ``cuda_graph``) still load."""
    state = torch.load(LAST, weights_only=True)
    state["hyper_parameters"].update(step_batch=64, cuda_graph=True)
    torch.save(state, "old.ckpt")
    run_cli("test", "--ckpt_path", "old.ckpt", "--data.data_dir", str(idx_root))
    assert "test/acc: " in capsys.readouterr().out


def test_a_chosen_class_gets_its_own_defaults_not_the_mlps(run_cli, capsys):
    """jsonargparse carries a default class's settings into another class chosen instead; the app's defaults are
    a layer under the flags, so ``--model Classifier`` keeps its dropout 0.2 (the MLP's is 0)."""
    with pytest.raises(SystemExit):
        run_cli("fit", "--model", "Classifier", "--data", "CatDogDataModule", "--print_config")
    out = capsys.readouterr().out
    assert "dropout: 0.2" in out
    assert "batch_size: 32" in out and "num_workers: 2" in out  # CatDogDataModule's, not MNIST's 64 and 0
