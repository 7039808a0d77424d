"""datamodules/name_clash.py: another distribution's top-level ``lightning_app`` is noticed in one line."""

from __future__ import annotations

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


def _import_datamodules(*path, cwd) -> str:
    code = "import datamodules"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, path))}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stderr


@pytest.mark.parametrize("first", ["theirs", "ours"])
def test_another_lightning_app_is_named_with_what_to_do(old_lightning_app, first, tmp_path):
    path = (old_lightning_app, ROOT) if first == "theirs" else (ROOT, old_lightning_app)
    lines = [line for line in _import_datamodules(*path, cwd=tmp_path).splitlines() if "lightning_app" in line]
    assert len(lines) == 1, lines
    assert "lightning-app 2.3.2 is installed and also provides a top-level `lightning_app`" in lines[0]
    assert "`pip uninstall lightning-app`" in lines[0]
    said = "runs it, not this app;" if first == "theirs" else "may run it, not this app, from another folder"
    assert said in lines[0]


def test_this_environment_has_no_other_lightning_app():
    """The suite itself would test the other package: say so once, here."""
    assert name_clash() is None, name_clash()
