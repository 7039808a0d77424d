"""Fixtures: tiny real-format data in a temp dir (no network, no ../shared), the CLI as a user types it, a fitted run.

Helpers the tests import are in tests/helpers/."""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

import pytest

from tests.helpers.data import CATS_DOGS, write_idx_dataset, write_photo_folder


@pytest.fixture(scope="session", autouse=True)
def help_cache_in_tmp(tmp_path_factory):
    """Help texts the CLI caches (cli/help_cache.py) go to a temp folder, for this process and its children."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DLWP_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session")
def idx_root(tmp_path_factory) -> Path:
    """A data folder holding tiny MNIST and FashionMNIST in torchvision's layout."""
    root = tmp_path_factory.mktemp("data")
    write_idx_dataset(root, "MNIST")
    write_idx_dataset(root, "FashionMNIST")
    return root


@pytest.fixture
def run_cli(tmp_path, monkeypatch):
    """Run ``python -m lightning_app ARGS`` in-process inside tmp_path, as a user types it (progress bar, model
    summary and logger on): ``sys.argv`` is patched, as Lightning's own CLI tests do."""
    from lightning_app.cli.main import main

    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> None:
        try:
            with monkeypatch.context() as patch, warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                patch.setattr(sys, "argv", ["python -m lightning_app", *args])
                main()
        finally:
            # LightningCLI warns when it is handed arguments while sys.argv holds others: never here
            assert not [w for w in caught if "args parameter" in str(w.message)]
            for w in caught:  # the rest go on to pytest's summary
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    return run


@pytest.fixture(scope="session")
def fitted_mnist_logs(idx_root, tmp_path_factory) -> Path:
    """``logs/`` after one ``fit --data.data_dir IDX --trainer.max_epochs 1`` (the MLP), made once per session."""
    from lightning_app.cli.main import main

    folder = tmp_path_factory.mktemp("fitted")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setattr(
            sys,
            "argv",
            ["python -m lightning_app", "fit", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "1"],
        )
        main()
    return folder / "logs"


@pytest.fixture
def mnist_run(fitted_mnist_logs, tmp_path, run_cli) -> Path:
    """A copy of that run in this test's folder (its checkpoints hold relative paths): ``logs/MLP-MNIST/version_0``."""
    shutil.copytree(fitted_mnist_logs, tmp_path / "logs")
    return Path("logs/MLP-MNIST/version_0")


@pytest.fixture
def photo_root(tmp_path) -> Path:
    return write_photo_folder(tmp_path / "photos", CATS_DOGS)


@pytest.fixture
def in_tmp_path(tmp_path, monkeypatch):
    """A Trainer's default_root_dir is the working folder: the feature cache goes there, not into the repo."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def photo_stream(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny photo folder and the LitData stream ``optimize`` wrote of it (made once per session)."""
    from lightning_app.toolkit.optimize import optimize_images

    root = tmp_path_factory.mktemp("streamed")
    photos = write_photo_folder(root / "photos", CATS_DOGS)
    optimize_images(data_dir=str(photos), output=str(root / "stream"), num_workers=2)
    return photos, root / "stream"
