"""The one read of the command line before the parser's: what must be known before jsonargparse parses.

``--ckpt_path`` decides the classes the other flags (``--data.image_size``) belong to, ``--model``/``--data``
narrow ``best``/``last`` to their runs, and the save folders say where ``best``/``last`` look. Read, never changed.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

SAVE_DIR_FLAGS = ("--trainer.logger.init_args.save_dir", "--trainer.logger.save_dir")


@dataclass(frozen=True)
class Flags:
    subcommand: str | None = None
    ckpt_path: str | None = None
    model: str | None = None
    data: str | None = None
    save_dir: str | None = None  # the TensorBoard logger's, where runs go
    default_root_dir: str | None = None  # where runs go without a logger


def read_flags(argv: list[str]) -> Flags:
    reader = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for flag in ("--ckpt_path", "--model", "--data", "--trainer.default_root_dir", "-c", "--config"):
        reader.add_argument(flag)
    reader.add_argument(*SAVE_DIR_FLAGS, dest="save_dir")
    known, rest = reader.parse_known_args(argv)
    return Flags(
        subcommand=next((a for a in rest if not a.startswith("-")), None),
        ckpt_path=known.ckpt_path,
        model=known.model,
        data=known.data,
        save_dir=known.save_dir,
        default_root_dir=getattr(known, "trainer.default_root_dir"),
    )
