"""GPU paths (skipped without CUDA; CI has none): the fast path computes what the eager one does, and a
training step makes no host-device synchronisation."""

from __future__ import annotations

import warnings

import pytest
import torch
from conftest import train_losses
from lightning.pytorch import Callback
from tests_helpers import transfer_fit_args

from modules import MLP, Classifier

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class SyncWatch(Callback):
    """Records every host-device synchronisation (torch's sync debug mode) over training batches [start, stop)."""

    def __init__(self, start: int = 3, stop: int = 23) -> None:
        self.start, self.stop = start, stop
        self.caught: list[warnings.WarningMessage] = []
        self.watched = False
        self._watch = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == 0 and batch_idx == self.start:
            self._watch = warnings.catch_warnings(record=True)
            self.caught = self._watch.__enter__()
            self.watched = True
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
        elif trainer.current_epoch == 0 and batch_idx == self.stop and self._watch is not None:
            torch.cuda.set_sync_debug_mode("default")
            self._watch.__exit__(None, None, None)
            self._watch = None

    def syncs(self) -> list[str]:
        return sorted({f"{w.filename}:{w.lineno}" for w in self.caught if "synchroniz" in str(w.message)})


def fit_losses(data_dir, epochs: int = 2, model_class=MLP, **model_kwargs) -> torch.Tensor:
    """Per-step training losses on the GPU; 540 training samples in batches of 64, so a last batch of 28."""
    return train_losses(data_dir, "gpu", epochs, lambda: model_class(**model_kwargs), on_device=True)


def test_cuda_graph_step_matches_the_eager_step(idx_root):
    eager = fit_losses(idx_root, lr_schedule="constant")
    graphed = fit_losses(idx_root, lr_schedule="constant", cuda_graph=True)
    assert len(graphed) == len(eager) == 2 * 9
    torch.testing.assert_close(graphed, eager, rtol=1e-4, atol=1e-5)


def test_cuda_graph_with_dropout_learns_like_eager(idx_root):
    eager = fit_losses(idx_root, epochs=4, model_class=Classifier)
    graphed = fit_losses(idx_root, epochs=4, model_class=Classifier, cuda_graph=True)
    assert graphed[-9:].mean() < 0.5 * graphed[:9].mean()  # it learns
    assert abs(float(graphed[-9:].mean() - eager[-9:].mean())) < 0.25 * float(eager[:9].mean())


@pytest.mark.parametrize("on_device", [False, True])
def test_no_host_sync_during_training_steps(idx_root, run_cli, on_device):
    """The app's default callbacks, metrics and logging included: steps 3-22 never wait for the GPU."""
    from lightning_app.cli import LessonCLI

    watch = SyncWatch()
    cli = LessonCLI(
        args=[
            "--data.data_dir",
            str(idx_root),
            "--data.batch_size",
            "16",
            "--data.on_device",
            str(on_device).lower(),
            "--trainer.max_epochs",
            "1",
            "--trainer.accelerator",
            "gpu",
        ],
        run=False,
    )
    cli.trainer.callbacks.append(watch)
    cli.trainer.fit(cli.model, cli.datamodule)
    assert watch.watched
    assert watch.syncs() == []


def test_transfer_fit_on_gpu_with_bf16_and_channels_last(photo_root, run_cli):
    run_cli(*transfer_fit_args(photo_root), "--trainer.accelerator", "gpu", "--trainer.precision", "bf16-mixed")
