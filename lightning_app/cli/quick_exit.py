"""The command line's way out, without the interpreter's teardown.

Once torch and Lightning are imported, Python spends seconds at exit freeing their module objects one by one
(docs/speed.md, "Start-up and memory"), work the OS does at once when the process ends. So the entry point ends
with ``os._exit`` (Python offers no public way to skip its teardown alone) after what a normal exit does that
matters: the ``atexit`` handlers (logging, multiprocessing, TensorBoard, coverage) and flushed standard streams.
Only from ``__main__`` (importing the app never exits), only when every other thread has ended, and never under
a profiler or debugger (they write their results after the program returns); ``DLWP_QUICK_EXIT=0`` turns it off.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn


def leave(code: object = 0) -> NoReturn:
    """Exit as ``sys.exit(code)`` would, without the teardown when it is safe to skip."""
    safe = (
        os.environ.get("DLWP_QUICK_EXIT", "1") != "0"
        and threading.active_count() == 1
        and sys.gettrace() is None
        and sys.getprofile() is None
    )
    if not safe:
        sys.exit(code)
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)  # as the interpreter prints a SystemExit message
        code = 1
    atexit._run_exitfuncs()  # noqa: SLF001 - the handlers a normal exit runs, once (os._exit runs none)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`dlwp fit --help | head`)
            stream.flush()
    os._exit(code or 0)
