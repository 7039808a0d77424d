"""Every command the README shows in a shell block runs as typed, on the tiny data: the data and the epochs are
pointed at small generated files by flags added at the end, nothing else changes."""

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY_PHOTOS = ["--model.backbone", "resnet18", "--model.weights", "none", "--data.image_size", "32"]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("python -m lightning_app ")]


def test_the_readme_shows_commands():
    assert "python -m lightning_app fit" in readme_commands()


@pytest.mark.parametrize("command", readme_commands())
def test_a_readme_command_runs_as_typed(command, idx_root, photo_root, run_cli, capsys):
    args = shlex.split(command)[3:]
    if "catdog_transfer" in args or "catdog_finetune" in args:
        extra = [*TINY_PHOTOS, "--data.data_dir", str(photo_root), "--data.num_workers", "0"]
    else:
        extra = ["--data.data_dir", str(idx_root)]
    run_cli(*args, *extra, "--trainer.max_epochs", "1")
    assert "test/acc:" in capsys.readouterr().out
