"""``metrics.json`` and ``metrics.csv`` in every run folder, beside TensorBoard."""

from __future__ import annotations

import csv
import io
import json
import math

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import rank_zero_only

from lightning_app.runs.checkpoints import monitoring_checkpoint
from lightning_app.runs.run_folders import run_dir
from lightning_app.runs.storage import location, write_text


class MetricsJSON(Callback):
    """Writes the latest epoch metrics to ``<run>/metrics.json`` after validation, fit and test, and one row per
    training epoch to ``<run>/metrics.csv`` (for a spreadsheet or pandas, beside TensorBoard).

    Keys are the logged names (``val/acc``, ``test/acc``, ...); later stages update earlier values, so after
    ``fit`` the file holds the final train/val metrics and the test metrics of the best checkpoint. The CSV
    holds ``epoch``, ``global_step`` and every ``train/``, ``val/``, ``lr-`` and ``time/`` value of each epoch;
    a resumed run goes on in the same file (rows of epochs it trains again are replaced). Lightning's
    CSVLogger would delete an existing ``metrics.csv`` in a resumed run's folder, hence this; where a CSVLogger
    writes its own ``metrics.csv`` into the run folder, this table is ``epochs.csv`` beside it.
    """

    fast_path_safe = True  # acts per epoch, or reads loaded batches as they are (contracts.FastPathSafe)

    filename = "metrics.json"
    csv_filename = "metrics.csv"
    csv_beside_csvlogger = "epochs.csv"
    csv_prefixes = ("train/", "val/", "lr-", "time/")

    @rank_zero_only
    def _write(self, trainer: Trainer) -> None:
        folder = run_dir(trainer)
        if folder is None:
            return
        path = folder / self.filename
        metrics = json.loads(path.read_text()) if path.exists() else {}
        for key, value in trainer.callback_metrics.items():
            if key == "step":  # the fast path's logger step (engine/fast_path.py); global_step is below
                continue
            number = float(value)
            metrics[key] = number if math.isfinite(number) else str(number)
        metrics["epoch"] = trainer.current_epoch
        metrics["global_step"] = trainer.global_step
        ckpt = monitoring_checkpoint(trainer)
        if ckpt is not None and ckpt.best_model_path:
            metrics["best_model_path"] = ckpt.best_model_path
            if ckpt.best_model_score is not None:
                metrics[f"best/{ckpt.monitor}"] = float(ckpt.best_model_score)
        folder.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(metrics, indent=2, sort_keys=True) + "\n")

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self._write(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Again after the epoch's checkpoints (they are written after this callback's ``on_validation_end``,
        and a new best removes the old one): the file never names a checkpoint that is gone."""
        self._write(trainer)
        self._epoch_done = trainer.current_epoch

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._write_row(trainer)

    def _write_row(self, trainer: Trainer) -> None:
        """The row of the epoch that ended last, once its train metrics are logged (the model logs them after
        the callbacks' ``on_train_epoch_end``): at the next epoch's start or at the end of ``fit``."""
        epoch, self._epoch_done = getattr(self, "_epoch_done", None), None
        folder = run_dir(trainer)
        if epoch is None or folder is None or not trainer.is_global_zero:
            return
        path = folder / self.table_name(trainer, folder)
        row = {"epoch": epoch, "global_step": trainer.global_step}
        for key, value in trainer.callback_metrics.items():
            if key.startswith(self.csv_prefixes):
                row[key] = float(value)
        rows = []
        if path.exists():
            table = csv.DictReader(io.StringIO(path.read_text(), newline=""))
            rows = [r for r in table if str(r.get("epoch", "")).isdigit() and int(r["epoch"]) < epoch]
        rows.append(row)
        columns = ["epoch", "global_step", *sorted({k for r in rows for k in r} - {"epoch", "global_step"})]
        folder.mkdir(parents=True, exist_ok=True)
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        write_text(path, text.getvalue())

    def table_name(self, trainer: Trainer, folder: object) -> str:
        """``metrics.csv``, or ``epochs.csv`` where a CSVLogger writes its ``metrics.csv`` into ``folder``."""
        for logger in trainer.loggers:
            if isinstance(logger, CSVLogger) and str(location(logger.log_dir)) == str(folder):
                return self.csv_beside_csvlogger
        return self.csv_filename

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._write(trainer)
        self._write_row(trainer)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._write(trainer)
