"""The 'Deep Learning with PyTorch' lesson as a Lightning application (the layout: docs/architecture.md).

``from lightning_app import Predictor`` is the one import for a script or notebook (loaded on first use, so
``python -m lightning_app --help`` stays instant).
"""

from typing import Any

from lightning_app import earlier_names

earlier_names.install()

__all__ = ["Predictor"]


def __getattr__(name: str) -> Any:
    if name == "Predictor":
        from lightning_app.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'lightning_app' has no attribute {name!r}")
