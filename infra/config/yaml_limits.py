"""Bounds on a stack file's YAML, checked on the parser's events before any Python object is built.

A YAML alias (``*name``) repeats an anchored node (``&name``) without copying it in the file: a few hundred
bytes of nested aliases ("billion laughs") stand for billions of nodes. PyYAML builds them as shared
references, cheaply, but everything that walks the result (secret wrapping, validation, JSON) expands them.
:func:`check_yaml_bounds` reads the parser's event stream (libyaml's C parser where available: fast, and no
tree is built) and counts the nodes the document would expand to, giving up as soon as that count passes
:data:`MAX_NODES`; memory is one number per anchor and one frame per nesting level. It also refuses an alias
to a node that contains it (a recursive structure: walking it never ends), nesting deeper than
:data:`MAX_DEPTH`, and a key repeated in one mapping (PyYAML keeps the last silently; Pulumi refuses the file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

#: Nodes a stack file may expand to (aliases counted as the nodes they repeat). Real stack files have hundreds.
MAX_NODES = 100_000
#: Nesting of mappings and sequences.
MAX_DEPTH = 64
#: Bytes of a stack file.
MAX_BYTES = 4 * 1024 * 1024
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: YAML 1.1 merge key: repeating it in one mapping is allowed.
_MERGE_KEY = "<<"


class YamlBoundsError(ValueError):
    """The document breaks a bound. ``where`` is its key path from the document's top (keys and indexes)."""

    def __init__(self, message: str, where: tuple[str | int, ...], line: int) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.line = line


@dataclass
class _Frame:
    mapping: bool
    anchor: str | None
    line: int
    #: Nodes below this one, aliases expanded (itself included).
    size: int = 1
    #: Children seen so far (a mapping alternates key, value).
    children: int = 0
    #: The last key read (a mapping), for the path of a message.
    key: str | None = None
    keys: dict[str, int] = field(default_factory=dict)


def check_yaml_bounds(text: str) -> None:
    """Raise :class:`YamlBoundsError` if ``text`` breaks a bound; YAML syntax errors are left to the loader."""
    sizes: dict[str, int] = {}
    frames: list[_Frame] = []
    total = 0

    def where() -> tuple[str | int, ...]:
        # A mapping contributes the key being read, a sequence the index of the item being read.
        path: list[str | int] = []
        for f in frames:
            if not f.mapping:
                path.append(f.children)
            elif f.key is not None:
                path.append(f.key)
        return tuple(path)

    def add(nodes: int, line: int) -> None:
        nonlocal total
        total += nodes
        if total > MAX_NODES:
            raise YamlBoundsError(
                f"expands to more than {MAX_NODES} YAML nodes (aliases counted as the nodes they repeat): refused "
                "as a YAML alias bomb",
                where(),
                line,
            )

    def child_done(size: int, scalar_key: str | None, line: int) -> None:
        if not frames:
            return
        parent = frames[-1]
        parent.size += size
        if parent.mapping and parent.children % 2 == 0:
            # A key: remember it for the path, and refuse a repeated one.
            parent.key = scalar_key
            if scalar_key is not None and scalar_key != _MERGE_KEY:
                first = parent.keys.get(scalar_key)
                parent.keys[scalar_key] = line
                if first is not None:
                    raise YamlBoundsError(
                        f"key '{scalar_key}' is repeated in one mapping (first at line {first}): YAML keeps only the "
                        "last silently and Pulumi refuses the file; remove one",
                        where(),
                        line,
                    )
        parent.children += 1

    try:
        for event in yaml.parse(text, Loader=_LOADER):
            line = event.start_mark.line + 1 if event.start_mark is not None else 0
            if isinstance(event, yaml.ScalarEvent):
                add(1, line)
                if event.anchor:
                    sizes[event.anchor] = 1
                child_done(1, event.value, line)
            elif isinstance(event, yaml.AliasEvent):
                anchor = event.anchor or ""
                if any(f.anchor == anchor for f in frames):
                    raise YamlBoundsError(
                        f"alias '*{anchor}' repeats a node that contains it: a structure without end", where(), line
                    )
                size = sizes.get(anchor, 1)
                add(size, line)
                child_done(size, None, line)
            elif isinstance(event, yaml.CollectionStartEvent):
                if len(frames) >= MAX_DEPTH:
                    raise YamlBoundsError(f"nests deeper than {MAX_DEPTH} levels", where(), line)
                add(1, line)
                frames.append(_Frame(isinstance(event, yaml.MappingStartEvent), event.anchor, line))
            elif isinstance(event, yaml.CollectionEndEvent):
                done = frames.pop()
                if done.anchor:
                    sizes[done.anchor] = done.size
                child_done(done.size, None, line)
    except yaml.YAMLError:
        # Syntax errors are reported by the loader, with their position.
        return
