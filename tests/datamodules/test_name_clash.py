"""datamodules/name_clash.py: another distribution's top-level ``lightning_app`` is noticed in one line."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

from datamodules.name_clash import name_clash
from tests.helpers.processes import ROOT


@pytest.fixture
def old_lightning_app(tmp_path):
    """What ``pip install lightning-app==2.3.2`` puts in site-packages, reduced to its metadata and package."""
    site = tmp_path / "site"
    (site / "lightning_app-2.3.2.dist-info").mkdir(parents=True)
    (site / "lightning_app-2.3.2.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: lightning-app\nVersion: 2.3.2\n"
    )
    (site / "lightning_app").mkdir()
    (site / "lightning_app" / "__init__.py").write_text("")
    return site


def _warn_in_a_child(*path, cwd) -> str:
    """name_clash.py's warning in a child process with ``path`` as PYTHONPATH (the module alone: no torch)."""
    code = f"import runpy; runpy.run_path({str(ROOT / 'datamodules' / 'name_clash.py')!r})['warn_on_name_clash']()"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, path))}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_a_shadowing_lightning_app_is_named_with_what_to_do(old_lightning_app, tmp_path):
    """The other package first on the path, as from any folder but the repository's root: one line."""
    lines = [line for line in _warn_in_a_child(old_lightning_app, ROOT, cwd=tmp_path).splitlines() if line]
    assert len(lines) == 1, lines
    assert "lightning-app 2.3.2 is installed and also provides a top-level `lightning_app`" in lines[0]
    assert "`python -m lightning_app` runs it, not this app; `pip uninstall lightning-app`" in lines[0]


def test_importing_datamodules_says_it(monkeypatch):
    import datamodules
    from datamodules import name_clash

    monkeypatch.setattr(name_clash, "name_clash", lambda: "lightning-app 2.3.2 is installed")
    with pytest.warns(name_clash.NameClashWarning, match="lightning-app 2.3.2 is installed"):
        importlib.reload(datamodules)


def test_this_environment_has_no_other_lightning_app():
    """The suite itself would test the other package: say so once, here."""
    assert name_clash() is None, name_clash()
