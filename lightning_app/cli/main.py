"""The entry point of ``python -m lightning_app`` and ``dlwp``: every known problem ends in one line and exit code 2.

Set ``DLWP_DEBUG=1`` to see the full traceback and the library chatter the CLI otherwise filters.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys

import torch
from jsonargparse import auto_cli
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

from lightning_app.cli import bounded_yaml, flag_hints, terminal
from lightning_app.cli.argv import Flags, read_flags
from lightning_app.cli.lesson_cli import DEFAULT_DATA, DEFAULT_MODEL, LessonCLI
from lightning_app.cli.subcommands import SUBCOMMANDS, TRAINER_SUBCOMMANDS, program
from lightning_app.engine.host_tuning import keep_large_allocations, skip_nvml_probe_without_driver
from lightning_app.errors import USER_ERRORS, first_line, printable
from modules import ClassificationModule, ModelError


def check_class_names(flags: Flags) -> None:
    """Fail early, in one line, on ``--model NAME``/``--data NAME`` that name no loaded class of this app.

    jsonargparse's own message for an unknown class lists every candidate type over many lines.
    """
    for flag, value, base in (("model", flags.model, ClassificationModule), ("data", flags.data, LightningDataModule)):
        names = sorted(
            c.__name__ for c in flag_hints.subclasses(base) if c.__module__.split(".")[0] in ("modules", "datamodules")
        )
        if value and "." not in value and not value.startswith(("{", "[")) and value not in names:
            raise ModelError(f"unknown {flag} {value!r}: choose one of {', '.join(names)} (or give a full import path)")


def user_error(exc: BaseException) -> BaseException | None:
    """The user-facing error behind ``exc`` (jsonargparse wraps errors raised while instantiating)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, (*USER_ERRORS, MisconfigurationException)):  # Lightning's own word for a user's setting
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def one_line(exc: BaseException, subcommand: str | None = None) -> str:
    """The first informative line of an error; jsonargparse's say where to look for more."""
    text = first_line(exc)
    if isinstance(exc, argparse.ArgumentError) and (nested := nested_type_error(str(exc))):
        return f"{nested} (see `{program()} {subcommand or '<subcommand>'} --help`)"[:400]
    if isinstance(exc, argparse.ArgumentError):
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = next((line for line in lines[1:] if line.startswith(("- ", "Given value:"))), "")
        text = f"{text} {detail}".strip() if detail and len(text) < 80 else text
        text += f" (see `{program()} {subcommand or '<subcommand>'} --help`)"
    return text[:400]


def nested_type_error(text: str) -> str | None:
    """``--model.lr expects a float, got nan`` from jsonargparse's report on a class's setting, which names
    the section and the setting on separate lines, the value last, and the Union of classes it tried."""
    keys = re.findall(r'Parser key "([^"]+)":', text)
    expected = re.search(r"Expected a <class '(\w+)'>\. Got value: (.{0,80})", text)
    if len(keys) < 2 or expected is None:
        return None
    kind, value = expected.groups()
    return f"--{keys[0]}.{keys[-1]} expects {'an' if kind[0] in 'aeiou' else 'a'} {kind}, got {value.strip()}"


def in_a_distributed_job() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def peer_failure(exc: BaseException) -> str:
    """One line for an error inside a job of several processes, where it is nearly always a collective
    operation that lost a process (killed, out of memory, a node gone): each process says so, once, instead of
    ending in a traceback of the collective; ``DLWP_DEBUG=1`` shows the traceback."""
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    first = first_line(exc, 200)
    return (
        f"process {rank} of {world} stopped ({type(exc).__name__}: {first}); if another process of the job died, "
        "its log says why. The checkpoints of the finished epochs are kept: relaunch the job with "
        "`fit --ckpt_path last` to go on"
    )


def run_function(name: str, args: list[str]) -> None:
    """A subcommand of a checkpoint alone (``export``, ``demo``): its flags are its function's signature."""
    prog = f"{program()} {name}"
    auto_cli(SUBCOMMANDS[name].function(), args=args, exit_on_error=False, prog=prog, parser_mode=bounded_yaml.MODE)


def main() -> None:
    """Entry point of ``python -m lightning_app``: known problems end in one line and exit code 2.

    Set ``DLWP_DEBUG=1`` to see the full traceback and the library chatter the CLI otherwise filters.
    """
    terminal.install()
    skip_nvml_probe_without_driver()
    keep_large_allocations()
    flags = Flags()
    try:
        flags = read_flags(sys.argv[1:])
        subcommand = SUBCOMMANDS.get(flags.subcommand)
        if subcommand is not None and subcommand.kind == "function":
            run_function(flags.subcommand, sys.argv[sys.argv.index(flags.subcommand) + 1 :])
            return
        if subcommand is not None and subcommand.kind == "study":
            subcommand.function()(sys.argv[sys.argv.index(flags.subcommand) + 1 :], program())
            return
        check_class_names(flags)
        LessonCLI(flags=flags)
    except SIGTERMException:  # Lightning stops at the next step and raises SystemExit(None): exit status 0
        print(
            "error: stopped by SIGTERM; the checkpoints of the finished epochs are kept: "
            "go on with `fit --ckpt_path last`",
            file=sys.stderr,
        )
        sys.exit(128 + signal.SIGTERM)  # 143, as a shell reports a process ended by SIGTERM
    except Exception as exc:
        found = user_error(exc)
        if found is None and not os.environ.get(terminal.DEBUG_ENV) and in_a_distributed_job():
            print(f"error: {printable(peer_failure(exc))}", file=sys.stderr)
            sys.exit(1)
        if found is None or os.environ.get(terminal.DEBUG_ENV):
            raise
        message = one_line(found, flags.subcommand if flags.subcommand in TRAINER_SUBCOMMANDS else None)
        if isinstance(found, argparse.ArgumentError):
            known = flag_hints.sections(flags.model, flags.data, DEFAULT_MODEL, DEFAULT_DATA)
            message = flag_hints.unknown_flag_hint(sys.argv[1:], known, flags.subcommand) or message
        print(f"error: {printable(message)}", file=sys.stderr)
        sys.exit(2)
