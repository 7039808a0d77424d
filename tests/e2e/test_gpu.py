"""GPU paths (skipped without CUDA; CI has none): the fast path computes what the per-step one does, and a
training step makes no host-device synchronisation."""

from __future__ import annotations

import warnings

import pytest
import torch
from lightning.pytorch import Callback

from lightning_app.engine.fast_path import FastPath
from modules import MLP, Classifier
from tests.helpers.data import transfer_fit_args
from tests.helpers.training import fit_tiny_mnist

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


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


def test_fast_path_trains_like_the_per_step_path(idx_root):
    """Loaded batches of two steps against Lightning's own loop on batches of 64, the default schedule."""
    _, plain = fit_tiny_mnist(idx_root, "gpu", 3, MLP)
    _, fast = fit_tiny_mnist(idx_root, "gpu", 3, MLP, [FastPath(2)])
    assert fast.global_step == plain.global_step == 3 * 9
    torch.testing.assert_close(weights(fast), weights(plain), rtol=1e-4, atol=1e-5)


def test_fast_path_with_dropout_trains_like_the_per_step_path(idx_root):
    _, plain = fit_tiny_mnist(idx_root, "gpu", 3, Classifier)
    _, fast = fit_tiny_mnist(idx_root, "gpu", 3, Classifier, [FastPath(2)])
    torch.testing.assert_close(weights(fast), weights(plain), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fast", [False, True])
def test_no_host_sync_during_training_steps(idx_root, run_cli, fast):
    """The app's default callbacks, metrics and logging included: training batches 3-11 never wait for the GPU."""
    from lightning_app.cli.lesson_cli import LessonCLI

    args = ["--model", "MLP", "--data", "MNISTDataModule", "--data.data_dir", str(idx_root)]
    args += ["--data.batch_size", "16", "--trainer.max_epochs", "1"]
    if not fast:
        args = [*args, "--fast_path", "null", "--data.on_device", "false"]
    watch = SyncWatch()
    cli = LessonCLI(args=[*args, "--trainer.accelerator", "gpu"], run=False)
    cli.trainer.callbacks.append(watch)
    cli.trainer.fit(cli.model, cli.datamodule)
    assert watch.watched
    assert watch.syncs() == []


def test_transfer_fit_on_gpu_with_bf16_and_channels_last(photo_root, run_cli):
    run_cli(*transfer_fit_args(photo_root), "--trainer.accelerator", "gpu", "--trainer.precision", "bf16-mixed")


def test_device_decoding_gives_the_cpu_decoders_features(photo_root):
    """nvJPEG and the CPU reader decode the same JPEGs up to rounding: the features agree to float tolerance."""
    from lightning.pytorch import Trainer, seed_everything

    from lightning_app.engine.feature_cache import FeatureCache
    from modules import TransferModel
    from tests.helpers.data import photo_module

    tables = []
    for on_device in (True, False):
        seed_everything(0)
        cache = FeatureCache(on_disk=False, decode_on_device=on_device)
        trainer = Trainer(
            accelerator="gpu",
            devices=1,
            max_epochs=1,
            logger=False,
            callbacks=[cache],
            enable_checkpointing=False,
            enable_progress_bar=False,
        )
        trainer.fit(TransferModel(backbone="resnet18", weights="none", num_classes=2), photo_module(photo_root))
        assert cache.photos_run == 24
        tables.append(torch.cat([cache._memory[key] for key in sorted(cache._memory)]))
    on_device, on_cpu = tables
    assert (on_device - on_cpu).abs().max() <= 0.05 * on_cpu.abs().max()
