"""GPU paths (skipped without CUDA; CI has none): the fast path computes what the eager one does, and a
training step makes no host-device synchronisation."""

from __future__ import annotations

import warnings

import pytest
import torch
from conftest import fit_tiny_mnist
from lightning.pytorch import Callback
from tests_helpers import transfer_fit_args

from modules import MLP, Classifier

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
FAST_DATA = {"batch_size": 128, "on_device": True}  # loaded batches of 128, optimizer steps of 64


class SyncWatch(Callback):
    """Records every host-device synchronisation (torch's sync debug mode) over training batches [start, stop)."""

    def __init__(self, start: int = 3, stop: int = 12) -> None:
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


def weights(trainer) -> torch.Tensor:
    return torch.cat([p.detach().flatten().cpu() for p in trainer.lightning_module.parameters()])


def test_cuda_graph_step_matches_the_eager_step(idx_root):
    """Same split steps, cosine schedule: replayed graphs give the losses and weights of eager steps."""
    eager_losses, eager = fit_tiny_mnist(idx_root, "gpu", 3, lambda: MLP(step_batch=64), **FAST_DATA)
    graph_losses, graph = fit_tiny_mnist(idx_root, "gpu", 3, lambda: MLP(step_batch=64, cuda_graph=True), **FAST_DATA)
    assert graph.lightning_module._graph is not None  # it did capture
    assert graph.global_step == eager.global_step == 3 * 9
    torch.testing.assert_close(graph_losses, eager_losses, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(weights(graph), weights(eager), rtol=1e-4, atol=1e-5)
    for key in ("train/loss", "train/acc", "val/acc"):
        torch.testing.assert_close(graph.callback_metrics[key], eager.callback_metrics[key], rtol=1e-4, atol=1e-5)


def test_fast_path_trains_like_the_default_path(idx_root):
    """Loaded batches of 128 replayed as graph steps of 64 against Lightning's own loop on batches of 64."""
    _, plain = fit_tiny_mnist(idx_root, "gpu", 3, lambda: MLP(lr_schedule="constant"))
    _, fast = fit_tiny_mnist(
        idx_root, "gpu", 3, lambda: MLP(lr_schedule="constant", step_batch=64, cuda_graph=True), **FAST_DATA
    )
    torch.testing.assert_close(weights(fast), weights(plain), rtol=1e-3, atol=1e-4)


def test_cuda_graph_with_dropout_learns_like_eager(idx_root):
    eager, _ = fit_tiny_mnist(idx_root, "gpu", 4, lambda: Classifier(step_batch=64), **FAST_DATA)
    graph, _ = fit_tiny_mnist(idx_root, "gpu", 4, lambda: Classifier(step_batch=64, cuda_graph=True), **FAST_DATA)
    assert graph[-5:].mean() < 0.5 * graph[:5].mean()  # it learns
    assert abs(float(graph[-5:].mean() - eager[-5:].mean())) < 0.25 * float(eager[:5].mean())


def test_a_graphed_run_resumes_from_its_checkpoint(idx_root, run_cli, tmp_path):
    """Stopped after epoch 1 and resumed from last.ckpt, it ends where an uninterrupted graphed run ends."""
    fast = ["--data.data_dir", str(idx_root), "--data.batch_size", "128", "--data.on_device", "true"]
    fast += ["--model.step_batch", "64", "--model.cuda_graph", "true", "--trainer.accelerator", "gpu"]
    fast += ["--trainer.max_epochs", "3"]
    run_cli("fit", *fast, "--trainer.callbacks", "conftest.StopAfter")
    resumed = tmp_path / "logs" / "MLP-MNIST" / "version_0" / "checkpoints" / "last.ckpt"
    run_cli("fit", *fast, "--ckpt_path", str(resumed))
    run_cli("fit", *fast)
    whole = tmp_path / "logs" / "MLP-MNIST" / "version_1" / "checkpoints" / "last.ckpt"
    a, b = (torch.load(p, map_location="cpu", weights_only=True) for p in (resumed, whole))
    assert a["global_step"] == b["global_step"] == 3 * 9 and a["epoch"] == b["epoch"]
    for key, value in b["state_dict"].items():
        torch.testing.assert_close(a["state_dict"][key], value, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fast", [False, True])
def test_no_host_sync_during_training_steps(idx_root, run_cli, fast):
    """The app's default callbacks, metrics and logging included: training batches 3-11 never wait for the GPU."""
    from lightning_app.cli import LessonCLI

    args = ["--data.data_dir", str(idx_root), "--data.batch_size", "16", "--trainer.max_epochs", "1"]
    if fast:
        args = [*args, "--data.on_device", "true", "--model.step_batch", "8", "--model.cuda_graph", "true"]
    watch = SyncWatch()
    cli = LessonCLI(args=[*args, "--trainer.accelerator", "gpu"], run=False)
    cli.trainer.callbacks.append(watch)
    cli.trainer.fit(cli.model, cli.datamodule)
    assert watch.watched
    assert watch.syncs() == []


def test_transfer_fit_on_gpu_with_bf16_and_channels_last(photo_root, run_cli):
    run_cli(*transfer_fit_args(photo_root), "--trainer.accelerator", "gpu", "--trainer.precision", "bf16-mixed")
