"""Jinja2 templates from the top-level templates/ folder (CI pipelines, dashboards, alert rules, Modelfiles,
Dockerfiles), rendered strictly.

A checkout reads templates/ itself; the wheel carries the same folder as ``infra/templates`` (package data, copied
there at build time by setup.py), so an installed slm-deploy reads it from there.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

_CHECKOUT_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
#: Where the templates are: the checkout's templates/, else the installed package's copy.
TEMPLATES = _CHECKOUT_TEMPLATES if _CHECKOUT_TEMPLATES.is_dir() else Path(__file__).resolve().parent / "templates"


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
    """Render ``templates/<name>`` with ``values``."""
    return str(_environment().get_template(name).render(**values))
