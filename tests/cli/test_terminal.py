"""The quiet terminal: Lightning's informational lines are off by their loggers' level (not by patterns that miss
new lines), the app's own notices and real warnings still show, once."""

from __future__ import annotations

import pytest

from tests.helpers.processes import python_cli


def test_lightnings_info_lines_are_quiet_and_the_apps_notices_stay(idx_root, tmp_path):
    run = python_cli(
        "fit",
        "--data.data_dir",
        str(idx_root),
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_val_batches",
        "1",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    text = run.stdout + run.stderr
    for chatter in ("GPU available", "Seed set", "was configured so 1 batch will be used", "💡 Tip", "LOCAL_RANK"):
        assert chatter not in text
    assert text.count("fast path off: --trainer.limit_val_batches 1") == 1  # the app's own notice, once
    assert "test/acc:" in run.stdout


@pytest.mark.long
def test_debug_shows_lightnings_lines_again(idx_root, tmp_path):
    run = python_cli(
        "fit",
        "--data.data_dir",
        str(idx_root),
        "--trainer.max_epochs",
        "1",
        cwd=tmp_path,
        env_extra={"DLWP_DEBUG": "1"},
    )
    assert run.returncode == 0 and "Seed set" in run.stdout + run.stderr
