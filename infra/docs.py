"""Documents generated from the code, so they cannot drift from it: the docs site's configuration reference
(docs/reference.md) and the policy catalogue (docs/policies.md)."""

from __future__ import annotations

from pathlib import Path

from infra.config.reference import config_reference, replace_section

#: The docs page that carries the generated configuration reference, between its markers.
REFERENCE_PAGE = Path("docs") / "reference.md"


class DocsError(Exception):
    """A page the generator rewrites is missing or unreadable (one line, exit 2)."""


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DocsError(f"{path}: no such file (run `slm-deploy docs` in the project folder, or give --root)") from None
    except OSError as error:
        raise DocsError(f"{path}: cannot be read ({error.strerror})") from None


def generated_documents(root: Path) -> dict[Path, str]:
    """Each generated file with the text it must have now (the configuration reference, the policy catalogue)."""
    from infra.policy.catalogue import render_catalogue

    reference = root / REFERENCE_PAGE
    try:
        page = replace_section(_read(reference), config_reference())
    except ValueError as error:
        raise DocsError(f"{reference}: {error}") from None
    return {
        reference: page,
        root / "docs" / "policies.md": render_catalogue(root / "policies"),
    }
