"""The command line's way out, without the interpreter's teardown, where that loses nothing.

Once torch and Lightning are imported, Python spends seconds at exit freeing their module objects one by one
(docs/speed.md, "Start-up and memory"), work the OS does at once when the process ends. So the entry point arms
a last ``atexit`` handler before anything else registers one: ``atexit`` runs handlers in reverse order, so every
handler registered later (logging, multiprocessing, TensorBoard's writers, a user's) has run, and the
interpreter has joined every non-daemon thread, when it flushes the standard streams and calls ``os._exit``.

Only where nothing but the app's own code ran: the program is ``python -m lightning_app`` or ``dlwp`` itself (not
a program that embeds it, whose earlier handlers would be skipped), no class path names code from outside the
app and the libraries it is built on (a user's callback may hold an open file that only the teardown flushes:
:func:`forbid`), and no profiler or debugger is attached (they write their results after the program returns).
``DLWP_QUICK_EXIT=0`` turns it off.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from typing import NoReturn

from lightning_app.provenance import known_path, started_as_the_program


class State:
    armed = False  # the last handler is registered
    allowed = True  # nothing from outside the known packages was named
    code: int | None = None  # the exit status the last handler leaves with; None: a normal exit


def arm() -> None:
    """Register the last handler; call it first thing in the entry point, before other modules register theirs."""
    if not State.armed and started_as_the_program():
        atexit.register(last_handler)
        State.armed = True


def forbid_outside(class_paths: list[str]) -> None:
    """A normal exit when any class path names a module outside the app and its libraries (provenance.py)."""
    if not all(known_path(path) for path in class_paths):
        State.allowed = False


def leave(code: object = 0) -> NoReturn:
    """Exit as ``sys.exit(code)`` would; the armed last handler skips the teardown when it is safe."""
    if (
        State.armed
        and State.allowed
        and os.environ.get("DLWP_QUICK_EXIT", "1") != "0"
        and sys.gettrace() is None
        and sys.getprofile() is None
    ):
        State.code = code if isinstance(code, int) else (0 if code is None else 1)
    sys.exit(code)


def last_handler() -> None:
    """The last of the ``atexit`` handlers: flush what Python's teardown would, then end the process."""
    if State.code is None:
        return
    if "logging" in sys.modules:  # its own handler may have been registered before this one
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`dlwp fit --help | head`)
            stream.flush()
    os._exit(State.code)
