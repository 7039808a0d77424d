"""One fix for CPU runs of a CUDA build of torch: make ``torch.cuda.is_available()`` cheap again.

Importing Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` (so that a CUDA check does not poison later
forks). On a machine without the NVIDIA driver, torch then tries to load ``libnvidia-ml.so.1`` on every
``torch.cuda.is_available()`` call, fails, and falls back to the ordinary CUDA runtime check anyway; nothing
is cached, and ``torch.optim.Adam.step`` asks at every step. Measured on this 2-core CPU (torch 2.14.1,
2026-11-28): 96 µs a call against 3 µs, 0.2-0.3 ms of a 1.2-1.7 ms MNIST optimizer step.
"""

from __future__ import annotations

import ctypes
import os

VARIABLE = "PYTORCH_NVML_BASED_CUDA_CHECK"


def skip_nvml_probe_without_driver() -> bool:
    """Drop Lightning's NVML-based CUDA check where NVML cannot load (no NVIDIA driver): torch falls back to the
    CUDA runtime's own check there in any case, so only the cost changes. Returns whether it was dropped."""
    if os.environ.get(VARIABLE) != "1":
        return False
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        del os.environ[VARIABLE]
        return True
    return False
