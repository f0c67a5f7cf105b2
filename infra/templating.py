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
        # Compiling the alert-rule and dashboard templates was over a tenth of `check --stack prod`; the compiled
        # code is kept between runs, keyed by each template's source checksum (jinja2's FileSystemBytecodeCache).
        bytecode_cache=_bytecode_cache(),
        loader=FileSystemLoader(str(TEMPLATES)),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        # Templates do not change while a command runs: no stat of the file at every render.
        auto_reload=False,
    )


def _bytecode_cache() -> Any:
    """jinja2's cache in its own per-user folder of the temp dir (created mode 0700, refused if another user owns
    it); none when that folder cannot be used: templates are then compiled at every run, as before."""
    from jinja2 import FileSystemBytecodeCache

    try:
        return FileSystemBytecodeCache()
    except (OSError, RuntimeError):
        return None


def render_template(name: str, **values: Any) -> str:
    """Render ``templates/<name>`` with ``values``."""
    return str(_environment().get_template(name).render(**values))
