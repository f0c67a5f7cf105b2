"""Documents generated from the code, so they cannot drift from it."""

from __future__ import annotations

from pathlib import Path

from infra.config.reference import config_reference, replace_section


def generated_documents(root: Path) -> dict[Path, str]:
    """Each generated file with the text it must have now (README's config reference, the policy catalogue)."""
    from infra.policy.catalogue import render_catalogue

    readme = root / "README.md"
    return {
        readme: replace_section(readme.read_text(encoding="utf-8"), config_reference()),
        root / "docs" / "policies.md": render_catalogue(root / "policies"),
    }
