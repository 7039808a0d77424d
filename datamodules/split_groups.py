"""What a user's files say about a split: duplicate groups it keeps on one side (``groups``: the ``check.json``
that ``check`` wrote) and items it leaves out (``exclude``: a list of names). Both are files a user was given:
read within a size bound, checked, and any name they hold that the data lacks is ignored."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from datamodules.errors import DataError, printable

MAX_BYTES = 64 << 20  # the check.json of 70,000 items is a few MB


def _read(path: str, flag: str) -> str:
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{flag} {printable(path, 200)} is not a file: pass the check.json check wrote, or a list")
    if os.path.getsize(file) > MAX_BYTES:
        raise DataError(f"{flag} {printable(path, 200)} is over {MAX_BYTES >> 20} MB: pass a shorter list")
    with file.open("rb") as handle:
        return handle.read(MAX_BYTES + 1).decode("utf-8", errors="replace")


def canonical(name: str) -> str:
    """A file's name as both sides spell it (its absolute path); ``train[3]`` and other non-paths as they are."""
    return name if name.endswith("]") else os.path.abspath(name)


def duplicate_groups(path: str) -> list[list[str]]:
    """The groups of ``check.json``'s ``duplicates``, each a list of names (paths made absolute)."""
    try:
        report = json.loads(_read(path, "--data.groups"))
        groups = [[canonical(str(f["file"])) for f in group["files"]] for group in report["duplicates"]]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise DataError(
            f"--data.groups {printable(path, 200)} is not a check.json (its duplicates: groups of files): "
            "pass the one `check` wrote"
        ) from None
    return [group for group in groups if len(group) > 1]


def excluded_names(path: str) -> set[str]:
    """The names in ``path``: a JSON list of names, or one name a line (``#`` starts a comment)."""
    text = _read(path, "--data.exclude")
    if text.lstrip().startswith("["):
        try:
            names = json.loads(text)
        except (ValueError, RecursionError):
            names = None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise DataError(f"--data.exclude {printable(path, 200)} is not a JSON list of file names")
    else:
        names = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return {canonical(n) for n in names if n}


def keep_together(sides: torch.Tensor, order: torch.Tensor, names: Sequence[str], groups: list[list[str]]) -> None:
    """Move every member of a group to the side (``sides[i]``: 0 train, 1 val, 2 test) of its member that comes
    first in the split's random ``order``, in place: a group never straddles the split."""
    position = {canonical(name): i for i, name in enumerate(names)}
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order))
    for group in groups:
        members = [position[name] for name in group if name in position]
        if len(members) > 1:
            first = min(members, key=lambda i: int(rank[i]))
            sides[members] = int(sides[first])
