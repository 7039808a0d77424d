"""Progress for the steps outside a Trainer's loops that take seconds (check's pass, optimize's digests, export,
the demo's start): rich's bar or spinner on a terminal, one line where the output is a file or a pipe."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

T = TypeVar("T")


def console() -> Console:
    return Console(file=sys.stderr)


def track(items: Iterable[T], total: int, description: str) -> Iterator[T]:
    """``items``, with a bar of ``total`` on a terminal (one line, ``description``, elsewhere)."""
    out = console()
    if not out.is_terminal:
        print(f"{description} ({total})", file=sys.stderr, flush=True)
        yield from items
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=out, transient=True) as progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner with ``message`` on a terminal while the block runs (the line alone elsewhere)."""
    out = console()
    if not out.is_terminal:
        print(message, file=sys.stderr, flush=True)
        yield
        return
    with out.status(message):
        yield
