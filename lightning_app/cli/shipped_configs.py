"""``-c NAME``: a config shipped in ``lightning_app/configs`` by its name, inside jsonargparse's config action."""

from __future__ import annotations

from pathlib import Path

from jsonargparse import ActionConfigFile

CONFIG_DIR = Path(__file__).parent / "configs"


def shipped_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def resolve_config(value: str) -> str:
    """A file or YAML string as given; else the shipped config of that name (``mnist_mlp`` or ``mnist_mlp.yaml``)."""
    if Path(value).exists() or "\n" in value or value.lstrip().startswith(("{", "[")):
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
