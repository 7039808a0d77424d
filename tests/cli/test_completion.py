"""``dlwp completion``: the script names every subcommand and their flags, and bash completes from it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_app.cli.completion import script
from lightning_app.cli.subcommands import SUBCOMMANDS


@pytest.fixture(scope="module")
def scripts() -> dict[str, str]:
    return {shell: script(shell) for shell in ("bash", "zsh")}


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_the_script_names_every_subcommand_and_their_flags(scripts, shell):
    text = scripts[shell]
    assert len(text) < 2_000_000  # the names and flags, not every subclass a type hint admits
    for name in SUBCOMMANDS:
        assert name in text
    for flag in ("--trainer.max_epochs", "--model", "--model.help", "--data", "--ckpt_path", "--port", "--output"):
        assert flag in text, flag


def _complete(bash_script: str, tmp_path, *words: str) -> list[str]:
    """What bash offers for ``dlwp WORDS`` (the last word is the one being completed)."""
    path = tmp_path / "dlwp.bash"
    path.write_text(bash_script)
    line = " ".join(["dlwp", *words])
    probe = (
        f"source {path}; COMP_WORDS=(dlwp {' '.join(words)}); COMP_CWORD={len(words)}; "
        f"COMP_LINE='{line}'; COMP_POINT={len(line)}; _shtab_dlwp; printf '%s\\n' \"${{COMPREPLY[@]}}\""
    )
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_bash_completes_subcommands_and_flags(scripts, tmp_path):
    assert subprocess.run(["bash", "-n", "-c", scripts["bash"]]).returncode == 0
    assert set(_complete(scripts["bash"], tmp_path, "")) == set(SUBCOMMANDS)
    assert _complete(scripts["bash"], tmp_path, "lr") == ["lr_find"]
    assert "--trainer.max_epochs" in _complete(scripts["bash"], tmp_path, "fit", "--trainer.max_ep")
    assert "--port" in _complete(scripts["bash"], tmp_path, "demo", "--po")


@pytest.mark.long
def test_the_readme_line_installs_it(tmp_path):
    """``eval "$(dlwp completion bash)"``, as the README shows it, with the installed ``dlwp``."""
    bin_folder = Path(sys.executable).parent
    assert (bin_folder / "dlwp").exists(), "dlwp is installed by `pip install -e .`"
    done = subprocess.run(
        ["bash", "-c", 'eval "$(dlwp completion bash)" && complete -p dlwp'],
        cwd=tmp_path,
        env={**os.environ, "PATH": f"{bin_folder}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "complete -o bashdefault -F _shtab_dlwp dlwp"
