"""``sweep`` and ``check`` without their extras: one line saying what to install, nothing run."""

from __future__ import annotations

import sys

import pytest


@pytest.mark.parametrize(
    ("module", "command", "says"),
    [
        ("optuna", "sweep", "sweep needs the package optuna: pip install -e '.[sweep]'"),
        (
            "cleanlab.filter",
            "check",
            "check's label issues needs the package cleanlab.filter: pip install -e '.[check]'",
        ),
    ],
)
def test_a_missing_extra_is_one_line(idx_root, run_cli, capsys, monkeypatch, module, command, says):
    monkeypatch.setitem(sys.modules, module, None)  # import fails, as when the package is not installed
    with pytest.raises(SystemExit) as stop:
        run_cli(command, "--data.data_dir", str(idx_root))
    assert stop.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == [f"error: {says}"]
