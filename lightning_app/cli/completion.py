"""``dlwp completion bash|zsh|tcsh``: a shell completion script for every subcommand and its flags.

shtab writes the script from one argparse parser. The app has none that holds every subcommand (LightningCLI's
holds its six; ``export``, ``demo`` and this one are functions with parsers of their own), so this builds one: a
root whose subcommands are the parser LightningCLI builds for each of its six (taken from ``init_parser``,
LightningCLI's hook that makes every parser, before anything is parsed) and jsonargparse's ``auto_parser`` of
each function. shtab is called itself, not through jsonargparse's ``--print_completion``: that one also lists
every subclass a type hint admits (``--optimizer.lr`` as a tensor, a device mesh...), a 340 MB script.
The script completes ``dlwp``: a shell completes a command's name, and ``python -m lightning_app`` is none.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Literal

import shtab
from jsonargparse import ArgumentParser, auto_parser

from lightning_app.cli.argv import Flags
from lightning_app.cli.lesson_cli import LessonCLI
from lightning_app.cli.subcommands import SUBCOMMANDS, program


class _Built(Exception):
    """Raised from ``parse_arguments``: the parsers are built, and nothing is to be parsed."""


def subcommand_parser(name: str) -> ArgumentParser:
    """The parser of one subcommand, as ``dlwp NAME`` reads its flags."""
    sub = SUBCOMMANDS[name]
    if sub.kind == "function":
        return auto_parser(sub.function(), prog=f"{program()} {name}")
    if sub.kind == "study":  # fit's flags (its own --sweep.* are not completed)
        return subcommand_parser("fit")
    built: list[ArgumentParser] = []

    class ParsersOnly(LessonCLI):
        def init_parser(self, **kwargs: Any):
            built.append(super().init_parser(**kwargs))
            return built[-1]

        def parse_arguments(self, parser, args) -> None:
            raise _Built

    with contextlib.suppress(_Built):
        ParsersOnly(args=[name], flags=Flags(subcommand=name))
    return built[-1]  # the root's is first, the subcommand's last


@functools.cache
def root_parser() -> ArgumentParser:
    root = ArgumentParser(prog="dlwp", description="The 'Deep Learning with PyTorch' lesson.")
    subcommands = root.add_subcommands(required=True)
    for name, sub in SUBCOMMANDS.items():
        subcommands.add_subcommand(name, subcommand_parser(name), help=" ".join(sub.summary.split()))
    return root


def script(shell: str) -> str:
    return shtab.complete(root_parser(), shell)


def completion(shell: Literal["bash", "zsh", "tcsh"]) -> None:
    """Print a completion script for the shell: ``eval "$(dlwp completion bash)"`` in ~/.bashrc, or save the zsh
    one as ``_dlwp`` in a folder of your ``$fpath``.

    Args:
        shell: bash, zsh or tcsh.
    """
    print(script(shell))
