"""cli/quick_exit.py: the entry point leaves without the interpreter's teardown only where that loses nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers.processes import ROOT

EMBEDDED = """
import atexit, runpy, sys
atexit.register(lambda: print("atexit ran", flush=True))
sys.argv = ["dlwp", *{args!r}]
runpy.run_module("lightning_app", run_name="__main__")
print("after the entry point")
"""


def run_embedded(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = EMBEDDED.format(args=list(args))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("args", "code"), [(["--help"], 0), ([], 2)])  # no torch: a second each
def test_a_program_that_embeds_the_app_keeps_its_exit_and_handlers(args, code):
    done = run_embedded(*args)
    assert done.returncode == code, done.stderr
    assert done.stdout.rstrip().endswith("atexit ran")  # its handler, registered before the app: it ran
    assert done.stdout.count("atexit ran") == 1 and "after the entry point" not in done.stdout


def test_the_program_itself_leaves_quickly_with_its_status():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for args, code in ((["--help"], 0), ([], 2)):
        done = subprocess.run([sys.executable, "-m", "lightning_app", *args], env=env, capture_output=True, timeout=120)
        assert done.returncode == code and b"usage: " in done.stdout + done.stderr


@pytest.fixture
def quick_state(monkeypatch):
    from lightning_app.cli import quick_exit

    monkeypatch.setattr(quick_exit.State, "armed", True)
    monkeypatch.setattr(quick_exit.State, "allowed", True)
    monkeypatch.setattr(quick_exit.State, "code", None)
    monkeypatch.setattr(quick_exit.sys, "gettrace", lambda: None)  # under pytest-cov or a debugger: as if none
    return quick_exit


def test_leave_sets_the_status_the_last_handler_exits_with(quick_state, monkeypatch):
    exits = []
    monkeypatch.setattr(quick_state.os, "_exit", exits.append)
    with pytest.raises(SystemExit) as stop:
        quick_state.leave("error: stopped")
    assert stop.value.code == "error: stopped" and quick_state.State.code == 1  # as Python exits on a message
    quick_state.last_handler()
    assert exits == [1]


def test_a_class_path_from_outside_the_app_means_a_normal_exit(quick_state, monkeypatch):
    monkeypatch.setattr(quick_state.os, "_exit", lambda code: pytest.fail("took the quick exit"))
    quick_state.forbid_outside(["lightning.pytorch.callbacks.EarlyStopping", "modules.MLP"])
    assert quick_state.State.allowed
    quick_state.forbid_outside(["mycallbacks.Writer"])  # a user's code may hold a file only the teardown flushes
    with pytest.raises(SystemExit):
        quick_state.leave(0)
    assert quick_state.State.code is None
    quick_state.last_handler()  # does nothing: the interpreter's own exit follows


def test_it_is_a_normal_exit_when_turned_off_or_profiled(quick_state, monkeypatch):
    monkeypatch.setenv("DLWP_QUICK_EXIT", "0")
    with pytest.raises(SystemExit) as stop:
        quick_state.leave(3)
    assert stop.value.code == 3 and quick_state.State.code is None
    monkeypatch.delenv("DLWP_QUICK_EXIT")
    monkeypatch.setattr(quick_state.sys, "getprofile", lambda: print)  # as under cProfile
    with pytest.raises(SystemExit):
        quick_state.leave(0)
    assert quick_state.State.code is None
