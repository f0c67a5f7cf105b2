"""Jinja2 templates from infra/templates/ (Modelfiles, CI pipelines, dashboards …), rendered strictly.

They are package data: an installed slm-deploy carries them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parent / "templates"


@cache
def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    # StrictUndefined: a missing value is an error, never an empty string in a deployed file.
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        # Templates do not change while a command runs: no stat of the file at every render.
        auto_reload=False,
    )


def render_template(name: str, **values: Any) -> str:
    """Render ``infra/templates/<name>`` with ``values``."""
    return str(_environment().get_template(name).render(**values))
