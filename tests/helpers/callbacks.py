"""Callbacks the tests add to runs, also by class path (``--trainer.callbacks tests.helpers.callbacks.KillAt``)."""

from __future__ import annotations

import os
from pathlib import Path

from lightning.pytorch import Callback


class StopAfter(Callback):
    """Ends a fit after ``epochs`` epochs, as an interruption would, without changing the run's settings."""

    fast_path_safe = True  # a test's probe: a loaded batch is what it records or acts on

    def __init__(self, epochs: int = 1) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


class PoisonAfter(Callback):
    """From epoch ``epoch`` on, the weights turn NaN: the loss does too."""

    fast_path_safe = True  # a test's probe: a loaded batch is what it records or acts on

    def __init__(self, epoch: int = 1) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch >= self.epoch:
            import torch

            with torch.no_grad():
                for p in pl_module.parameters():
                    p.fill_(float("nan"))


class KillAt(Callback):
    """SIGKILLs its own process in the middle of epoch ``epoch``, as a crash or an OOM killer would (only the
    process of global rank ``rank`` when given)."""

    fast_path_safe = True  # a test's probe: a loaded batch is what it records or acts on

    def __init__(self, epoch: int = 1, batch: int = 2, rank: int | None = None) -> None:
        self.epoch, self.batch, self.rank = epoch, batch, rank

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.rank is not None and trainer.global_rank != self.rank:
            return
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)


class RecordBatches(Callback):
    """Writes the training samples each rank saw to ``$RECORD_DIR/rank<N>.json`` (identified by content), and
    a checksum of its final weights to ``weights<N>.json``."""

    fast_path_safe = True  # a test's probe: a loaded batch is what it records or acts on

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        import hashlib

        import torch

        pixels = batch[0].flatten(1).mul(127.5).add(127.5).round().to(torch.uint8)  # back to the stored bytes
        self.seen += [hashlib.sha1(row.numpy().tobytes()).hexdigest() for row in pixels]

    def on_train_end(self, trainer, pl_module) -> None:
        import json

        folder = Path(os.environ["RECORD_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"rank{trainer.global_rank}.json").write_text(json.dumps(self.seen))
        weights = [float(p.detach().double().sum()) for p in pl_module.parameters()]
        (folder / f"weights{trainer.global_rank}.json").write_text(json.dumps(weights))


class RecordEnvironment(Callback):
    """Writes which cluster environment Lightning detected, and the ranks, to ``$RECORD_DIR/env<rank>.json``."""

    fast_path_safe = True  # a test's probe: a loaded batch is what it records or acts on

    def on_fit_start(self, trainer, pl_module) -> None:
        import json

        env = trainer.strategy.cluster_environment
        folder = Path(os.environ["RECORD_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        record = {"environment": type(env).__name__, "world_size": trainer.world_size, "node_rank": trainer.node_rank}
        (folder / f"env{trainer.global_rank}.json").write_text(json.dumps(record))


class RecordLosses(Callback):
    """Keeps each training step's loss (a device tensor: no host sync)."""

    fast_path_safe = True  # a test's probe: a loaded batch is what it records or acts on

    def __init__(self) -> None:
        self.losses: list = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(outputs["loss"].detach().clone())


class RecordFeaturePass(Callback):
    """Writes how many photos this rank's FeatureCache ran through the backbone to ``$RECORD_DIR/pass<rank>.json``."""

    fast_path_safe = True  # a test's probe: a loaded batch is what it records or acts on

    def on_fit_end(self, trainer, pl_module) -> None:
        import json

        from lightning_app.engine.feature_cache import FeatureCache

        cache = next(c for c in trainer.callbacks if isinstance(c, FeatureCache))
        folder = Path(os.environ["RECORD_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"pass{trainer.global_rank}.json").write_text(json.dumps(cache.photos_run))
