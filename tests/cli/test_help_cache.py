"""cli/help_cache.py: a help or print_config answered once is answered again before torch is imported, and only
when nothing it could depend on has changed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lightning_app.cli import help_cache
from tests.helpers.processes import ROOT, python_cli


@pytest.mark.parametrize(
    "argv",
    [
        ["fit", "--help"],
        ["fit", "-h"],
        ["fit", "--model", "Classifier", "--data", "FashionMNISTDataModule", "--help"],
        ["fit", "-c", "fashion_classifier", "--print_config"],
        ["fit", "--print_config=skip_null"],
        ["fit", "--model.help", "modules.MLP"],
    ],
)
def test_help_and_print_config_are_cacheable(argv):
    assert help_cache.cacheable(argv)


def test_commands_that_compute_or_read_what_the_key_misses_are_not(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text("trainer: {max_epochs: 1}\n")
    assert not help_cache.cacheable(["fit"])
    assert not help_cache.cacheable(["fit", "-c", "mine.yaml", "--print_config"])  # its contents, not in the key
    assert not help_cache.cacheable(["fit", "--config=mine.yaml", "--help"])
    assert not help_cache.cacheable(["fit", "--ckpt_path", "best", "--help"])  # a checkpoint decides the model
    assert not help_cache.cacheable(["fit", "--model", "my_models.Net", "--help"])  # a class of the user's own
    monkeypatch.setenv("DLWP_HELP_CACHE", "0")
    assert not help_cache.cacheable(["fit", "--help"])


def test_an_entry_is_found_by_its_own_command_only(monkeypatch, tmp_path):
    monkeypatch.setenv("DLWP_CACHE_DIR", str(tmp_path))
    help_cache.store(["fit", "--help"], "usage: fit\n")
    assert help_cache.lookup(["fit", "--help"]) == "usage: fit\n"
    assert help_cache.lookup(["test", "--help"]) is None
    monkeypatch.setenv("PL_FAULT_TOLERANT_TRAINING", "1")  # the environment LightningCLI reads is in the key
    assert help_cache.lookup(["fit", "--help"]) is None


def test_a_changed_source_file_or_install_misses(monkeypatch, tmp_path):
    monkeypatch.setenv("DLWP_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "model.py"
    source.write_text("x = 1\n")
    monkeypatch.setattr(help_cache, "_own_files", lambda: iter([f"{source.stat().st_mtime_ns}"]))
    help_cache.store(["fit", "--help"], "old help\n")
    assert help_cache.lookup(["fit", "--help"]) == "old help\n"
    source.write_text("x = 2\n")
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    assert help_cache.lookup(["fit", "--help"]) is None
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    help_cache.store(["fit", "--help"], "old help\n")
    assert help_cache.lookup(["fit", "--help"]) == "old help\n"
    (site / "lightning-9.9.9.dist-info").mkdir()  # an upgrade
    assert help_cache.lookup(["fit", "--help"]) is None


def test_an_oversized_or_broken_entry_is_a_miss_and_a_read_only_cache_is_skipped(monkeypatch, tmp_path):
    monkeypatch.setenv("DLWP_CACHE_DIR", str(tmp_path))
    entry = tmp_path / "help" / f"{help_cache.key(['fit', '--help'])}.txt"
    entry.parent.mkdir()
    entry.write_bytes(b"x" * (help_cache.LIMIT + 1))
    assert help_cache.lookup(["fit", "--help"]) is None
    entry.write_bytes(b"\xff\xfe broken")
    assert help_cache.lookup(["fit", "--help"]) is None
    monkeypatch.setenv("DLWP_CACHE_DIR", str(entry))  # a file where the folder should be: nothing raises
    help_cache.store(["fit", "--help"], "text\n")


def test_a_cached_help_is_printed_without_importing_torch(tmp_path):
    """The entry point reads the cache first: a seeded entry comes back, and the child never imported torch."""
    env = {"COLUMNS": "100", "PYTHONPATH": str(ROOT)}
    seed = (
        "import sys; sys.argv = ['dlwp']; from lightning_app.cli import help_cache; "
        "help_cache.store(['fit', '--help'], 'SEEDED usage\\n')"
    )
    run = [sys.executable, "-c", seed]
    subprocess.run(run, cwd=tmp_path, env={**os.environ, **env}, check=True)
    child = (
        "import runpy, sys; sys.argv = ['dlwp', 'fit', '--help']; runpy.run_module('lightning_app', "
        "run_name='__main__'); assert 'torch' not in sys.modules, 'torch imported'"
    )
    done = subprocess.run(
        [sys.executable, "-c", child],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "SEEDED usage\n", "")


@pytest.mark.long
def test_the_second_fit_help_is_the_first_word_for_word(tmp_path):
    first = python_cli("fit", "--help", cwd=tmp_path, env_extra={"COLUMNS": "100"})
    second = python_cli("fit", "--help", cwd=tmp_path, env_extra={"COLUMNS": "100"})
    assert first.returncode == second.returncode == 0
    assert "--trainer.max_epochs" in first.stdout
    assert second.stdout == first.stdout


def test_a_config_from_the_environment_is_never_answered_from_the_cache(monkeypatch):
    monkeypatch.setenv("JSONARGPARSE_DEFAULT_ENV", "true")  # PL_FIT__CONFIG=user.yaml would be read
    assert not help_cache.cacheable(["fit", "--print_config"])


def test_the_key_follows_the_apps_files_by_content(monkeypatch, tmp_path):
    """A shipped config replaced by one of the same size and date (cp -p) is a new key."""
    shipped = ROOT / "lightning_app" / "cli" / "configs" / "mnist_mlp.yaml"
    before = help_cache.key(["fit", "--help"])
    original = shipped.read_bytes()
    stat = shipped.stat()
    try:
        shipped.write_bytes(original.replace(b"\n", b" \n", 1)[:-1])  # other bytes, the same size
        os.utime(shipped, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert len(shipped.read_bytes()) == len(original) and help_cache.key(["fit", "--help"]) != before
    finally:
        shipped.write_bytes(original)
        os.utime(shipped, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.fixture
def entry(monkeypatch, tmp_path):
    """The path of the cache entry of ``fit --help``, in a cache folder of its own."""
    monkeypatch.setenv("DLWP_CACHE_DIR", str(tmp_path / "cache"))
    help_cache.store(["fit", "--help"], "usage: fit\n")
    path = help_cache.folder() / f"{help_cache.key(['fit', '--help'])}.txt"
    assert help_cache.lookup(["fit", "--help"]) == "usage: fit\n" and path.is_file()
    return path


def test_an_entry_with_control_characters_is_a_miss(entry):
    entry.write_text("usage: fit\n\x1b]0;pwned\x07\x1b[2J\n")  # window title, screen clear
    assert help_cache.lookup(["fit", "--help"]) is None


def test_a_fifo_or_a_folder_others_can_write_is_a_miss(entry):
    entry.unlink()
    os.mkfifo(entry)  # would block a plain open() forever
    assert help_cache.lookup(["fit", "--help"]) is None
    entry.unlink()
    entry.write_text("usage: fit\n")
    entry.parent.chmod(0o777)
    assert help_cache.lookup(["fit", "--help"]) is None
