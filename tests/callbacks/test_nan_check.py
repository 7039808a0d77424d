"""A NaN loss stops the run, naming the step, and keeps the last good checkpoint."""

import pytest
import torch


def test_a_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(idx_root, run_cli, capsys):
    args = ["fit", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "3"]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(*args, "--trainer.callbacks", "tests.helpers.callbacks.PoisonAfter")  # NaN weights from epoch 1 on
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "loss became NaN or infinite at step 9 (epoch 1)" in err  # 9 batches per epoch, 0-based
    assert "the last good checkpoint is logs/MLP-MNIST/version_0/checkpoints/" in err
    last = torch.load("logs/MLP-MNIST/version_0/checkpoints/last.ckpt", weights_only=True)
    assert last["epoch"] == 0
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())


def test_the_nan_check_reads_the_device_once_every_check_every_steps():
    from types import SimpleNamespace

    from lightning_app.callbacks.nan_check import StopOnNonFiniteLoss
    from lightning_app.errors import TrainingError

    watch = StopOnNonFiniteLoss(check_every=50)
    trainer = SimpleNamespace(global_step=0, current_epoch=0, checkpoint_callbacks=[])
    for step in range(149):
        trainer.global_step = step + 1  # Lightning counts the step just done
        loss = torch.tensor(float("nan") if step >= 123 else 1.0)
        watch.on_train_batch_end(trainer, None, {"loss": loss}, None, step)  # steps 0-99 pass two checks
    trainer.global_step = 150
    with pytest.raises(TrainingError, match="at step 123 "):
        watch.on_train_batch_end(trainer, None, {"loss": torch.tensor(float("nan"))}, None, 149)
