"""Two fixes for runs on the CPU (each measured in docs/speed.md, "The engine's choices").

``skip_nvml_probe_without_driver``: importing Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` (so that a
CUDA check does not poison later forks). On a machine without the NVIDIA driver, torch then tries to load
``libnvidia-ml.so.1`` on every ``torch.cuda.is_available()`` call, fails, and falls back to the ordinary CUDA
runtime check anyway; nothing is cached, and ``torch.optim.Adam.step`` asks at every step.

``keep_large_allocations``: glibc hands every allocation over 32 MB to ``mmap`` and back to the system when freed,
so each batch of large activation maps (EfficientNet-Lite0 at 224 px: 38 MB for 8 photos) arrives as fresh pages,
zeroed by the kernel on first touch: system time in the feature pass. Intel's guides for PyTorch on CPUs suggest
jemalloc or tcmalloc for the same reason."""

from __future__ import annotations

import ctypes
import os
import sys

VARIABLE = "PYTORCH_NVML_BASED_CUDA_CHECK"
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


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


def keep_large_allocations(block: int = 1 << 28) -> bool:
    """Serve allocations up to ``block`` bytes (256 MB) from the heap, and keep up to twice that free in it,
    instead of mapping and unmapping them each time (glibc only; elsewhere nothing changes). Returns whether
    it applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, block)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2 * block))
    except (OSError, AttributeError):  # not glibc
        return False
