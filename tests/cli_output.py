"""Reading what the CLI printed, for tests about a stack file's own warnings."""

from __future__ import annotations

#: The note validate and plan print for a stack name no level file binds (infra/stack_ref.py): about the name, not
#: the file; tests of a stack file's warnings use throwaway names and leave it out.
UNBOUND_NAME_NOTE = "is bound to no level file, so it is judged at"


def stack_file_lines(stderr: str) -> list[str]:
    """The stderr lines, without the note about an unbound stack name."""
    return [line for line in stderr.strip().splitlines() if UNBOUND_NAME_NOTE not in line]
