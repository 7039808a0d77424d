"""Whose code runs in this process: the app's own program and the libraries it is built on, or a user's too.

Two shortcuts are exact only where no user code ran, and this module is what they ask: the quick exit
(``cli/quick_exit.py``: a user's object may hold a file only the interpreter's teardown flushes) and the fast
path's direct Adam update (``engine/direct_optimizer.py``: a user's code may have registered optimizer hooks,
which only ``Optimizer.step`` runs). Standard library only: the entry point asks before torch is imported.
"""

from __future__ import annotations

import sys
from pathlib import Path

# the packages whose code may run for the shortcuts to hold: the app's and what it is built on
KNOWN_PACKAGES = frozenset(
    {"lightning_app", "datamodules", "modules", "lightning", "torch", "torchvision", "torchmetrics", "timm"}
)


def started_as_the_program() -> bool:
    """``python -m lightning_app`` or the ``dlwp`` script, not a program (a script, a notebook, a test) that
    runs the app's pieces inside itself."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None:
        return spec.name == "lightning_app.__main__"
    return Path(getattr(main, "__file__", None) or "").stem == "dlwp"  # the script pip wrote


def known_path(class_path: str) -> bool:
    """Whether a dotted class path names code of :data:`KNOWN_PACKAGES`."""
    return str(class_path).split(".")[0] in KNOWN_PACKAGES


def known(obj: object) -> bool:
    """Whether ``obj``'s class and every class it inherits from come from :data:`KNOWN_PACKAGES` or Python's own
    standard library (``abc.ABC``, ``object``)."""
    roots = {cls.__module__.split(".")[0] for cls in type(obj).__mro__}
    return all(root in KNOWN_PACKAGES or root in sys.stdlib_module_names or root == "builtins" for root in roots)
