"""What `--stack` names: a stack by name (`dev`) or by its file (`stacks/Pulumi.dev.yaml`, `Pulumi.dev.yaml`),
resolved to the stack's name and the project folder that holds its `stacks/`; and the one-line notes about a
stack that the commands print (a name with no file, a name no level file binds)."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from infra.config.loader import STACKS_DIR, StackConfigError, display_path, stack_file

_FILE_NAME = re.compile(r"Pulumi\.(?P<name>[^/\\]+)\.ya?ml")


def stack_names(root: Path) -> list[str]:
    """The stacks of a project folder: ``stacks/Pulumi.<name>.yaml``, sorted."""
    folder = root / STACKS_DIR
    found = (_FILE_NAME.fullmatch(path.name) for path in folder.glob("Pulumi.*.y*ml")) if folder.is_dir() else ()
    return sorted(match.group("name") for match in found if match)


def resolve_stack(argument: str, root: Path) -> tuple[str, Path]:
    """``(name, root)`` for a ``--stack`` value; :class:`StackConfigError` (one line) when there is no such stack.

    A file path's folder must be a ``stacks/`` folder (``stackConfigDir: stacks``): its parent is the root.
    """
    name, where = argument, root
    looks_like_a_file = argument.endswith((".yaml", ".yml")) or "/" in argument or "\\" in argument
    if looks_like_a_file:
        path = Path(argument)
        match = _FILE_NAME.fullmatch(path.name)
        if match is None:
            raise StackConfigError(
                argument, None, "not a stack file: give a stack name, or a file named stacks/Pulumi.<stack>.yaml"
            )
        name = match.group("name")
        if path.parent != Path("."):
            if path.parent.name != STACKS_DIR:
                raise StackConfigError(
                    argument,
                    None,
                    f"stack files live in a {STACKS_DIR}/ folder (Pulumi.yaml's "
                    "stackConfigDir): move it there or give --root",
                )
            where = path.parent.parent
    if not stack_file(name, where).is_file():
        known = stack_names(where)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        here = f"stacks here: {', '.join(known)}" if known else f"no stack files in {display_path(where / STACKS_DIR)}"
        raise StackConfigError(display_path(stack_file(name, where)), None, f"no such stack file ({hint}{here})")
    return name, where


def unbound_level_warning(name: str, path: Path, pack_dir: Path) -> str | None:
    """The warning for a stack name no level file of the pack binds (``check`` judges it at the strictest level)."""
    from infra.policy.pack_config import PolicyConfigError, bind_level, level_files

    config_dir = pack_dir / "config"
    try:
        binding = bind_level(name, config_dir)
    except PolicyConfigError:
        return None  # `check` says what is wrong with the level files
    if binding.matched is not None:
        return None
    others = ", ".join(f"{level}.json" for level in level_files(config_dir) if level != binding.level)
    return (
        f"warning: {display_path(path)}: stack '{name}' is bound to no level file, so it is judged at "
        f"{binding.level}; to bind it, add '{name}' to the stacks of environment-binding in "
        f"policies/config/{others or binding.config_file.name}"
    )
