"""YAML read with bounded alias expansion: the parser mode of every command line and ``-c`` file.

A config file is data a user may have been given. YAML's anchors and aliases let 1 KB name a billion values (the
"billion laughs"): PyYAML builds it as shared references in a moment, but jsonargparse then walks and copies the
values one by one, to gigabytes and minutes. jsonargparse takes a loader per parser mode (``set_loader``, its
documented extension point), so this mode counts, on PyYAML's node graph, how many values the document expands
to, without expanding it, and refuses past ``MAX_VALUES`` in one line; a document within the bound is then read
by jsonargparse's own YAML loader, unchanged.
"""

from __future__ import annotations

import yaml
from jsonargparse import get_loader, set_loader

from lightning_app.errors import SettingError

MODE = "yaml_bounded"
MAX_VALUES = 1_000_000  # a config of this app has a few hundred
MAX_CHARACTERS = 10_000_000
MAX_LIST = 1_000  # items of one list: jsonargparse's type check of a list is quadratic (8,000 widths took 43 s)


def expanded_size(root: yaml.Node) -> int:
    """How many values the document under ``root`` holds once its aliases are expanded, counted once per node
    (an alias is the same node object in PyYAML's graph), so in time linear in the file, not in the expansion."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in on_path:
            raise SettingError("a config's YAML alias refers to itself: write the values out")
        on_path.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            if len(node.value) > MAX_LIST:
                raise SettingError(
                    f"a config's list of {len(node.value):,} items is over the limit of {MAX_LIST:,} (line "
                    f"{node.start_mark.line + 1}): a setting of this app takes far fewer"
                )
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        on_path.discard(key)
        sizes[key] = min(total, MAX_VALUES + 1)  # past the bound the exact count no longer matters
        return sizes[key]

    return size(root)


def bounded_yaml_load(stream: str):
    """jsonargparse's YAML loader, after checking that the document expands to at most ``MAX_VALUES`` values."""
    if len(stream) > MAX_CHARACTERS:
        raise SettingError(f"a config of {len(stream):,} characters is over the limit of {MAX_CHARACTERS:,}")
    try:
        root = yaml.compose(stream, Loader=yaml.SafeLoader)  # the structure only: which values, not their types
        if root is not None and expanded_size(root) > MAX_VALUES:
            raise SettingError(
                f"a config's YAML aliases expand to over {MAX_VALUES:,} values (a YAML bomb?): write the values out"
            )
    except RecursionError:
        raise SettingError("a config nests too deeply to read: flatten it") from None
    return YAML_LOAD(stream)


YAML_LOAD = get_loader("yaml")  # jsonargparse's own
set_loader(MODE, bounded_yaml_load, exceptions=(yaml.YAMLError,))
