"""cli/quick_exit.py: the entry point leaves without the interpreter's teardown, yet exits as sys.exit would."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers.processes import ROOT

CHILD = """
import atexit, runpy, sys
atexit.register(lambda: print("atexit ran", flush=True))
sys.argv = ["dlwp", *{args!r}]
runpy.run_module("lightning_app", run_name="__main__")
print("after the entry point")
"""


def run_entry(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    code = CHILD.format(args=list(args))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("args", "code"), [(["--help"], 0), ([], 2)])  # no torch: a second each
def test_the_exit_status_and_the_atexit_handlers_are_kept(args, code):
    done = run_entry(*args)
    assert done.returncode == code, done.stderr
    assert done.stdout.rstrip().endswith("atexit ran")  # once, last, and nothing runs after the entry point
    assert done.stdout.count("atexit ran") == 1 and "after the entry point" not in done.stdout


def test_a_message_exit_prints_it_and_exits_1(monkeypatch):
    from lightning_app.cli import quick_exit

    monkeypatch.setattr(quick_exit.os, "_exit", lambda code: (_ for _ in ()).throw(SystemExit(("os._exit", code))))
    monkeypatch.setattr(quick_exit.sys, "gettrace", lambda: None)  # under pytest-cov or a debugger: as if none
    monkeypatch.setattr(quick_exit.threading, "active_count", lambda: 1)  # other tests' threads: as if ended
    monkeypatch.setattr(quick_exit.atexit, "_run_exitfuncs", lambda: None)
    with pytest.raises(SystemExit) as stop:
        quick_exit.leave("error: stopped")
    assert stop.value.code == ("os._exit", 1)


def test_it_is_a_normal_exit_when_turned_off_or_traced(monkeypatch):
    from lightning_app.cli import quick_exit

    monkeypatch.setattr(quick_exit.os, "_exit", lambda code: pytest.fail("took the quick exit"))
    monkeypatch.setenv("DLWP_QUICK_EXIT", "0")
    with pytest.raises(SystemExit) as stop:
        quick_exit.leave(3)
    assert stop.value.code == 3
    monkeypatch.delenv("DLWP_QUICK_EXIT")
    monkeypatch.setattr(quick_exit.sys, "getprofile", lambda: print)  # as under cProfile
    with pytest.raises(SystemExit):
        quick_exit.leave(0)
