"""``--ckpt_path`` as one config layer: found where the run's config puts runs, read once, parsed once."""

from pathlib import Path

import jsonargparse
import pytest
import torch

from lightning_app.runs import checkpoints


def count_calls(monkeypatch, owner, name: str) -> list:
    calls = []
    original = getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def test_best_is_read_once_and_the_command_line_parsed_once(idx_root, run_cli, mnist_run, monkeypatch, capsys):
    reads = count_calls(monkeypatch, checkpoints, "safe_load")
    loads = count_calls(monkeypatch, torch, "load")
    parses = count_calls(monkeypatch, jsonargparse.ArgumentParser, "parse_args")
    run_cli("test", "--ckpt_path", "best", "--data.data_dir", str(idx_root))
    assert "test/acc:" in capsys.readouterr().out
    assert len(reads) == 1  # the checkpoint layer's; Lightning's own restore for the test is the run itself
    # and no other: LightningCLI's _parse_ckpt_path, made a no-op, would read it again (a renamed hook shows here)
    assert len(loads) == 2
    top_level = [call for call in parses if getattr(call[0], "_subcommands_action", None) is not None]
    assert len(top_level) == 1  # (each top-level parse also parses its subcommand's parser)


def test_best_and_last_look_where_the_logger_saves(idx_root, run_cli, tmp_path, capsys):
    elsewhere = ["--trainer.logger.init_args.save_dir", "runs"]
    run_cli("fit", "--data.data_dir", str(idx_root), "--trainer.max_epochs", "1", *elsewhere)
    assert Path("runs/MLP-MNIST/version_0/checkpoints/last.ckpt").is_file() and not Path("logs").exists()
    capsys.readouterr()
    run_cli("test", "--ckpt_path", "best", "--data.data_dir", str(idx_root), *elsewhere)
    assert "test/acc:" in capsys.readouterr().out
    # a config file that puts runs there is followed too, and may name the checkpoint itself
    config = tmp_path / "elsewhere.yaml"
    config.write_text("trainer:\n  logger:\n    init_args:\n      save_dir: runs\nckpt_path: last\n")
    run_cli("validate", "-c", str(config), "--data.data_dir", str(idx_root))
    assert "val/acc:" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        run_cli("test", "--ckpt_path", "best", "--data.data_dir", str(idx_root))
    assert "no checkpoint found under logs/" in capsys.readouterr().err
