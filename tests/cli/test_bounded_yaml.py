"""Configs and flag values are read with bounded YAML alias expansion: a bomb is one line, at once."""

from __future__ import annotations

import os
import resource
import time

import pytest

from lightning_app.cli.bounded_yaml import MAX_VALUES, bounded_yaml_load
from lightning_app.errors import SettingError


def billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefghijklmnop"[:levels]:
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    return "\n".join([*lines, f"model:\n  init_args:\n    class_names: *{previous}"]) + "\n"


def test_a_billion_laughs_is_refused_at_once_with_little_memory():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(SettingError, match=f"aliases expand to over {MAX_VALUES:,} values"):
        bounded_yaml_load(billion_laughs())  # 9**10 = 3.5 billion values in 1 KB
    assert time.perf_counter() - start < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KB


def test_an_alias_that_holds_itself_or_a_huge_file_is_refused():
    with pytest.raises(SettingError, match="alias refers to itself"):
        bounded_yaml_load("trainer: &t\n  callbacks: [*t]\n")
    with pytest.raises(SettingError, match="over the limit of 10,000,000"):
        bounded_yaml_load("x: " + "1" * 10_000_001)


def test_ordinary_yaml_and_honest_aliases_read_as_jsonargparse_reads_them():
    assert bounded_yaml_load(billion_laughs(levels=2))["model"]["init_args"]["class_names"][0][0][0] == "lol"
    assert bounded_yaml_load("lr: 1e-3\nhidden: [128, 64]\nname: 2020-01-01") == {
        "lr": 1e-3,
        "hidden": [128, 64],
        "name": "2020-01-01",  # jsonargparse's loader: no timestamps
    }


def test_a_bomb_in_a_config_file_is_one_line_from_the_command_line(run_cli, tmp_path, capsys):
    (tmp_path / "bomb.yaml").write_text(billion_laughs())
    with pytest.raises(SystemExit) as exit_info:
        run_cli("fit", "-c", "bomb.yaml")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: a config's YAML aliases expand to over {MAX_VALUES:,} values (a YAML bomb?): write the values out"
    )


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda path: os.mkfifo(path), "is not a regular file"),  # a plain read would block forever
        (lambda path: path.write_bytes(b"a" * (2 << 20)), "over the limit of 1,048,576"),  # read whole before
        (lambda path: path.write_text("model:\n  init_args:\n    hidden: [" + ",".join(["8"] * 5000) + "]\n"), "5,000"),
    ],
)
def test_a_config_file_is_checked_before_it_is_read(make, says, run_cli, tmp_path, capsys):
    make(tmp_path / "given.yaml")
    with pytest.raises(SystemExit) as stop:
        run_cli("fit", "-c", str(tmp_path / "given.yaml"), "--print_config")
    err = capsys.readouterr().err
    assert stop.value.code == 2 and says in err and len(err.strip().splitlines()) == 1
