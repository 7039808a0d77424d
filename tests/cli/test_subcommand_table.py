"""One subcommand table (lightning_app/cli/subcommands.py): the top-level help, the parser, the README and
both entry points agree with it."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_app.cli.subcommands import SUBCOMMANDS, usage

ROOT = Path(__file__).resolve().parents[2]


def test_the_help_lists_every_subcommand_once():
    out = subprocess.run(
        [sys.executable, "-m", "lightning_app", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert out == usage()
    listed = re.findall(r"^  (\w+)\s", out.split("subcommands:")[1].split("common options:")[0], flags=re.M)
    assert listed == list(SUBCOMMANDS)


def test_the_parser_has_the_tables_lightning_and_trainer_subcommands():
    from lightning_app.cli.lesson_cli import LessonCLI

    assert list(LessonCLI.subcommands()) == [n for n, s in SUBCOMMANDS.items() if s.kind in ("lightning", "trainer")]


@pytest.mark.parametrize("name", [n for n, s in SUBCOMMANDS.items() if s.kind == "function"])
def test_each_function_subcommand_names_a_function(name):
    import importlib

    module, _, function = SUBCOMMANDS[name].target.partition(":")
    assert callable(getattr(importlib.import_module(module), function))


def test_the_readme_shows_every_subcommand():
    readme = (ROOT / "README.md").read_text()
    glance = readme.split("## Commands at a glance")[1].split("\n## ")[0]
    shown = re.findall(r"^\| `(\w+)` \|", glance, flags=re.M)
    assert shown == list(SUBCOMMANDS)


def test_a_function_subcommand_has_its_own_help(run_cli, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli("export", "--help")
    assert exit_info.value.code == 0 and "--ckpt_path" in capsys.readouterr().out


DLWP = Path(sys.executable).parent / "dlwp"


@pytest.mark.long  # three processes, two of which import Lightning
@pytest.mark.skipif(not DLWP.exists(), reason="the dlwp script is installed by pip install -e .")
def test_dlwp_and_python_m_are_one_program():
    as_module = subprocess.run([sys.executable, "-m", "lightning_app", "--help"], capture_output=True, text=True)
    as_script = subprocess.run([str(DLWP), "--help"], capture_output=True, text=True)
    assert as_script.stdout == as_module.stdout.replace("python -m lightning_app", "dlwp")
    assert as_script.stdout.startswith(f"usage: dlwp {{{','.join(SUBCOMMANDS)}}}")
    fit_help = subprocess.run([str(DLWP), "fit", "--help"], capture_output=True, text=True)
    assert fit_help.returncode == 0 and fit_help.stdout.startswith("usage: dlwp [options] fit")
    wrong = subprocess.run([str(DLWP), "fit", "--model.lrr", "1"], capture_output=True, text=True)
    assert wrong.returncode == 2 and wrong.stderr.strip().endswith("(see `dlwp fit --help`)")


def test_the_top_level_help_imports_neither_torch_nor_lightning():
    code = (
        "import sys; sys.argv = ['dlwp', '--help']\n"
        "from lightning_app.__main__ import run_command\n"
        "try:\n    run_command(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted({'torch', 'lightning'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "[]"


def test_usage_lines_read_as_the_user_typed(run_cli, capsys):
    with pytest.raises(SystemExit):
        run_cli("fit", "--help")
    assert capsys.readouterr().out.startswith("usage: python -m lightning_app [options] fit")
