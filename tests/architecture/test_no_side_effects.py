"""Importing the app changes nothing in the user's process: a notebook keeps its matplotlib backend and PIL its
decompression-bomb guard."""

import os
import subprocess
import sys


def test_importing_the_app_and_drawing_keeps_the_users_matplotlib_backend_and_pils_limit(tmp_path):
    code = f"""
import matplotlib
from PIL import Image
Image.MAX_IMAGE_PIXELS = 12345678  # the user's own setting
import datamodules, modules, lightning_app
from lightning_app import Predictor, figures
from lightning_app.cli import main, lesson_cli
import torch
fig = figures.view_classify(torch.zeros(1, 28, 28, dtype=torch.uint8), [0.9, 0.1], ["a", "b"], label=0)
figures.save(fig, {str(tmp_path / "view.png")!r})
from datamodules.image_io import read_rgb
Image.new("RGB", (40, 30)).save({str(tmp_path / "photo.png")!r})
read_rgb({str(tmp_path / "photo.png")!r})
print(matplotlib.get_backend(), Image.MAX_IMAGE_PIXELS)
"""
    env = {**os.environ, "MPLBACKEND": "svg"}  # the user's choice, as a notebook's inline backend would be
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == ["svg", "12345678"]
    assert (tmp_path / "view.png").read_bytes().startswith(b"\x89PNG")
