"""``-c NAME``: a config shipped in ``lightning_app/configs`` by its name, inside jsonargparse's config action."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from jsonargparse import ActionConfigFile

CONFIG_DIR = Path(__file__).parent / "configs"


def shipped_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


MAX_CONFIG_BYTES = 1 << 20  # a config of this app is a few kilobytes


def resolve_config(value: str) -> str:
    """A file or YAML string as given; else the shipped config of that name (``mnist_mlp`` or ``mnist_mlp.yaml``).
    A file is checked before it is read: a regular file (a FIFO would block the read forever) of at most
    ``MAX_CONFIG_BYTES``."""
    if "\n" in value or value.lstrip().startswith(("{", "[")):
        return value
    if Path(value).exists():
        info = os.stat(value)
        if not stat.S_ISREG(info.st_mode):
            raise TypeError(f"config {value!r} is not a regular file (a pipe, device or folder): pass a YAML file")
        if info.st_size > MAX_CONFIG_BYTES:
            raise TypeError(
                f"config {value!r} is {info.st_size:,} bytes, over the limit of {MAX_CONFIG_BYTES:,}: "
                "pass the YAML config you meant"
            )
        return value
    shipped = CONFIG_DIR / f"{Path(value).stem}.yaml"
    if shipped.is_file() and Path(value).parent == Path("."):
        return str(shipped)
    raise TypeError(
        f"config {value!r} is neither a file nor a shipped config: "
        f"pass a YAML file or one of {', '.join(shipped_names())}"
    )


class ShippedConfigFile(ActionConfigFile):
    """jsonargparse's ``--config`` action, which also takes the name of a shipped config."""

    def __call__(self, parser, cfg, values, option_string=None) -> None:
        super().__call__(parser, cfg, resolve_config(values), option_string)
