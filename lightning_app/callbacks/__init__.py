"""What runs inside a run: metrics files, the NaN check, TensorBoard views, the progress bar, the prediction
writer, staged fine-tuning. Each is a section of the config (``cli/sections.py``) or a ``--trainer.callbacks``."""

from typing import Any

from lightning_app.callbacks.epoch_timer import EpochTimer
from lightning_app.callbacks.metrics_files import MetricsJSON

__all__ = ["EpochTimer", "MetricsJSON"]


def __getattr__(name: str) -> Any:
    """0.1.0's ``lightning_app.callbacks.FeatureCache`` in saved configs (see earlier_names.py)."""
    from lightning_app.earlier_names import resolve

    return resolve(__name__, name)
