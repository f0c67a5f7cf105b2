"""``slm-deploy cost``: plan the stack offline, price what it creates, print or write the estimate."""

from __future__ import annotations

from pathlib import Path

from infra.cost.estimate import Estimate
from infra.cost.report import render_json, render_markdown, render_text

FORMATS = ("text", "json", "markdown", "png")


def render(result: Estimate, output_format: str) -> str | bytes:
    if output_format == "png":
        from infra.cost.chart import render_png

        return render_png(result)
    renderers = {"text": render_text, "json": render_json, "markdown": render_markdown}
    return renderers[output_format](result)


def needs_file(output_format: str, out: Path | None) -> bool:
    """A PNG goes to a file: never raw bytes on a terminal."""
    return output_format == "png" and out is None


def write_output(path: Path, content: str | bytes) -> None:
    """Text through the project's atomic writer; an image's bytes whole, through a temporary file."""
    from infra.files import write_atomically

    if isinstance(content, str):
        write_atomically(path, content)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.partial")
    staging.write_bytes(content)
    staging.replace(path)
