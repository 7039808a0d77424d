"""Lightning's own callbacks and loggers on the app's default (fast) path and on Lightning's per-step path.

Each case fits the tiny MNIST twice, with the app's FastPath and without it, with the same seed: the fast path is
either on and makes the same weights, metrics and logged points (step and names) as the per-step path, or it steps
aside with one line naming what made it. ``DLWP_WRITE_DOCS=1`` rewrites the table in docs/compatibility.md from
these runs; otherwise the last test checks that the page says what the runs show."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import torch
from lightning.pytorch import callbacks as cb
from lightning.pytorch import loggers

from lightning_app.callbacks.tensorboard_views import LearningRate
from lightning_app.engine.fast_path import FastPath
from modules import MLP, TransferModel
from tests.helpers.training import fit_tiny_mnist

pytestmark = pytest.mark.long
ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "compatibility.md"
MATRIX: dict[str, tuple[str, str, str]] = {}  # case -> (path taken, what matched, the one line)

CALLBACKS = {  # case -> (a callback, the path the app takes with it)
    "LearningRateMonitor(logging_interval='step')": (lambda: cb.LearningRateMonitor("step"), "per-step"),
    "LearningRateMonitor(logging_interval='epoch')": (lambda: cb.LearningRateMonitor("epoch"), "per-step"),
    "the app's learning_rate section (epoch)": (lambda: LearningRate("epoch"), "fast"),
    "the app's learning_rate section (step)": (lambda: LearningRate("step"), "per-step"),
    "EarlyStopping(monitor='val/acc')": (lambda: cb.EarlyStopping("val/acc", mode="max", patience=1), "fast"),
    "ModelCheckpoint(monitor='val/acc')": (lambda: cb.ModelCheckpoint(monitor="val/acc", mode="max"), "fast"),
    "ModelCheckpoint(every_n_train_steps=4)": (lambda: cb.ModelCheckpoint(every_n_train_steps=4), "per-step"),
    "StochasticWeightAveraging(swa_lrs=0.001)": (lambda: cb.StochasticWeightAveraging(swa_lrs=1e-3), "per-step"),
    "EMAWeightAveraging()": (lambda: cb.EMAWeightAveraging(), "per-step"),
    "GradientAccumulationScheduler({1: 2})": (lambda: cb.GradientAccumulationScheduler({1: 2}), "per-step"),
    "ThroughputMonitor(batch_size_fn=len)": (lambda: cb.ThroughputMonitor(lambda b: len(b[0])), "per-step"),
    "DeviceStatsMonitor(cpu_stats=False)": (lambda: cb.DeviceStatsMonitor(cpu_stats=False), "per-step"),
    "Timer(duration='00:00:10:00')": (lambda: cb.Timer("00:00:10:00"), "per-step"),
}
LOGGERS = {
    "TensorBoardLogger": lambda d: loggers.TensorBoardLogger(d, name="run", version=0),
    "CSVLogger": lambda d: loggers.CSVLogger(d, name="run", version=0),
    "MLFlowLogger (a file store)": lambda d: loggers.MLFlowLogger(tracking_uri=f"file:{d}/mlruns", run_name="run"),
}
BATCH_FLAGS = {  # a Trainer flag that counts batches: the fast path steps aside
    "limit_train_batches=3": {"limit_train_batches": 3},
    "val_check_interval=4": {"val_check_interval": 4},
    "limit_val_batches=2": {"limit_val_batches": 2},
}


def logged_points(folder: Path) -> list[tuple[str, tuple[str, ...]]]:
    """Each row of a CSVLogger's metrics.csv: its step and the names logged at it."""
    with (folder / "run" / "version_0" / "metrics.csv").open(newline="") as handle:
        return [
            (row["step"], tuple(sorted(k for k, v in row.items() if v and k != "step")))
            for row in csv.DictReader(handle)
        ]


def tensorboard_points(folder: Path) -> list[tuple[str, tuple[str, ...]]]:
    """Each step a TensorBoardLogger wrote scalars at, and their names."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder / "run" / "version_0")).Reload()
    steps: dict[int, list[str]] = {}
    for tag in events.Tags()["scalars"]:
        for event in events.Scalars(tag):
            steps.setdefault(event.step, []).append(tag)
    return [(str(step), tuple(sorted(tags))) for step, tags in sorted(steps.items())]


def fit_both(idx_root, tmp_path, caplog, make_callback=None, trainer_kwargs=None, make_logger=None, model=MLP):
    """The run on the per-step path (no FastPath) and with FastPath(4): their trainers and logged points."""
    runs = {}
    for name, extra in (("per-step", []), ("default", [FastPath(4)])):
        caplog.clear()
        folder = tmp_path / name
        logger = (make_logger or LOGGERS["CSVLogger"])(folder)
        callbacks = [*extra, *([make_callback()] if make_callback else [])]
        kwargs = {"logger": logger, "log_every_n_steps": 2, "default_root_dir": str(folder), **(trainer_kwargs or {})}
        kwargs["enable_checkpointing"] = any(isinstance(c, cb.ModelCheckpoint) for c in callbacks)
        _, trainer = fit_tiny_mnist(idx_root, "cpu", 2, model, callbacks, kwargs)
        trainer.test(trainer.lightning_module, datamodule=trainer.datamodule, verbose=False)
        off = next((r.getMessage() for r in caplog.records if r.getMessage().startswith("fast path off")), "")
        points = []
        if isinstance(logger, loggers.CSVLogger):
            points = logged_points(folder)
        elif isinstance(logger, loggers.TensorBoardLogger):
            points = tensorboard_points(folder)
        runs[name] = (trainer, points, off)
    return runs


def compare(case: str, runs: dict, expected_path: str) -> None:
    (plain, plain_points, _), (fast, fast_points, line) = runs["per-step"], runs["default"]
    took = "fast" if fast.lightning_module.step_engine is not None else "per-step"
    assert took == expected_path, line
    assert bool(line) == (took == "per-step")
    assert fast.global_step == plain.global_step
    for a, b in zip(fast.lightning_module.parameters(), plain.lightning_module.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # the same optimizer steps: bit for bit
    for key in ("train/loss", "train/acc", "val/loss", "val/acc", "test/acc"):
        if key in plain.callback_metrics:
            torch.testing.assert_close(fast.callback_metrics[key], plain.callback_metrics[key], rtol=0, atol=0)
    assert fast_points == plain_points
    matched = "weights and metrics bit for bit" + (", the same logged points" if plain_points else "")
    MATRIX[case] = (took, matched, line.removeprefix("fast path off: ").split(";")[0])


@pytest.mark.parametrize("case", list(CALLBACKS))
def test_lightnings_callbacks(case, idx_root, tmp_path, caplog):
    make, expected = CALLBACKS[case]
    compare(case, fit_both(idx_root, tmp_path, caplog, make), expected)


@pytest.mark.parametrize("case", list(LOGGERS))
def test_lightnings_loggers(case, idx_root, tmp_path, caplog, monkeypatch):
    if case.startswith("MLFlow"):
        pytest.importorskip("mlflow")
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a database needs SQLAlchemy, not installed here
    compare(case, fit_both(idx_root, tmp_path, caplog, make_logger=LOGGERS[case]), "fast")


@pytest.mark.parametrize("case", list(BATCH_FLAGS))
def test_flags_that_count_batches(case, idx_root, tmp_path, caplog):
    compare(case, fit_both(idx_root, tmp_path, caplog, trainer_kwargs=BATCH_FLAGS[case]), "per-step")


def test_backbone_finetuning_with_the_transfer_model(photo_root, tmp_path, caplog):
    """Lightning's BackboneFinetuning unfreezes the transfer model's backbone at epoch 1: the per-step path."""
    from lightning.pytorch import Trainer, seed_everything

    from datamodules import CatDogDataModule

    runs = {}
    for name, extra in (("per-step", []), ("default", [FastPath(4)])):
        caplog.clear()
        seed_everything(0)
        model = TransferModel(backbone="resnet18", weights="none", hidden=8)
        trainer = Trainer(
            max_epochs=2,
            accelerator="cpu",
            callbacks=[*extra, cb.BackboneFinetuning(unfreeze_backbone_at_epoch=1)],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        data = CatDogDataModule(data_dir=str(photo_root), batch_size=4, image_size=32, num_workers=0)
        trainer.fit(model, data)
        off = next((r.getMessage() for r in caplog.records if r.getMessage().startswith("fast path off")), "")
        runs[name] = (trainer, [], off)
    assert not runs["default"][0].lightning_module.backbone_frozen  # it did unfreeze
    compare("BackboneFinetuning(unfreeze_backbone_at_epoch=1), TransferModel", runs, "per-step")


def test_the_page_shows_these_runs():
    if len(MATRIX) < len(CALLBACKS) + len(BATCH_FLAGS) + 3:
        pytest.skip("run with the whole file: the table comes from the other tests")
    rows = [
        f"| {case} | {'fast path' if took == 'fast' else 'per-step path'} | {matched} | {line or '-'} |"
        for case, (took, matched, line) in MATRIX.items()
    ]
    table = (
        "\n".join(
            [
                "| with | `fit` takes | the same as `--fast_path null` | the line it prints |",
                "| --- | --- | --- | --- |",
                *rows,
            ]
        )
        + "\n"
    )
    text = PAGE.read_text()
    start, end = text.index("<!-- matrix -->\n") + len("<!-- matrix -->\n"), text.index("<!-- /matrix -->")
    if os.environ.get("DLWP_WRITE_DOCS"):
        PAGE.write_text(text[:start] + table + text[end:])
    else:
        assert text[start:end] == table, (
            "docs/compatibility.md is behind the tests: DLWP_WRITE_DOCS=1 pytest -m long " + __file__
        )
