"""``slm-deploy init-ci github|azure``: write the CI/CD pipeline for this repository's stacks.

The templates live in ``infra/templates/ci/``. They are Jinja2 with ``[[ … ]]`` / ``[% … %]`` delimiters,
because both GitHub Actions (``${{ … }}``) and Azure Pipelines (``${{ … }}``, ``$( … )``) use the
usual ``{{ … }}`` for their own expressions; a missing value is an error (``StrictUndefined``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from infra.gitops.pr import COMMENT_MARKER, stack_names

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "ci"

Provider = Literal["github", "azure"]

#: Where each provider's pipeline is written, relative to the repository root.
TARGETS: dict[str, tuple[str, str]] = {
    "github": ("github-workflow.yml.j2", ".github/workflows/slm-deploy.yml"),
    "azure": ("azure-pipelines.yml.j2", ".azure-pipelines/slm-deploy.yml"),
}

#: Pinned by major version tag (moving within the major release); see docs/gitops.md to pin by SHA.
GITHUB_ACTIONS = {
    "checkout": "actions/checkout@v5",
    "setup_python": "actions/setup-python@v6",
    "upload_artifact": "actions/upload-artifact@v4",
    "upload_sarif": "github/codeql-action/upload-sarif@v4",
    "pulumi": "pulumi/actions@v6",
}
PYTHON_VERSION = "3.11"


class CiError(Exception):
    """The pipeline cannot be written. ``str()`` is the one line a user needs."""


@dataclass(frozen=True)
class StackEntry:
    """A stack and the level its *name* is bound to (never the environment its stack file declares):
    the level file its ``pulumi preview``/``up`` run with, and the deployment environment (approvals)."""

    name: str
    level: str
    #: The stack deploys to a cluster it does not create (``cluster.mode: existing``): its deploy job needs
    #: that cluster's kubeconfig (see docs/gitops.md).
    existing_cluster: bool = False

    @property
    def job_id(self) -> str:
        """Azure Pipelines job and stage names allow letters, digits and ``_`` only."""
        return re.sub(r"[^A-Za-z0-9_]", "_", self.name)


def stacks_of(root: Path) -> list[StackEntry]:
    """The repository's stacks with their bound levels, in deployment order: dev, staging, prod, then by name.

    Levels come from the installed policy pack's level files (:func:`infra.policy.pack_config.bind_level`).
    """
    from infra.config.loader import StackConfigError, load_stack_file, stack_file
    from infra.policy.analyzer import DEFAULT_PACK_DIR
    from infra.policy.pack_config import LEVEL_ORDER, PolicyConfigError, bind_level

    try:
        entries = [
            StackEntry(
                name,
                bind_level(name, DEFAULT_PACK_DIR / "config").level,
                load_stack_file(stack_file(name, root)).cluster.mode == "existing",
            )
            for name in stack_names(root)
        ]
    except (PolicyConfigError, StackConfigError) as error:
        raise CiError(str(error)) from None
    order = {level: index for index, level in enumerate(LEVEL_ORDER)}
    return sorted(entries, key=lambda e: (order.get(e.level, len(order)), e.name))


def _pulumi_version() -> str:
    """The Pulumi CLI the pipelines install: the SDK's version (CLI and SDK are released together)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pulumi")
    except PackageNotFoundError:  # pragma: no cover - pulumi is a dependency
        return "3.x"


@cache
def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        undefined=StrictUndefined,
        block_start_string="[%",
        block_end_string="%]",
        variable_start_string="[[",
        variable_end_string="]]",
        comment_start_string="[#",
        comment_end_string="#]",
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render_pipeline(provider: Provider, stacks: list[StackEntry], main_branch: str = "main") -> str:
    """The pipeline text of ``provider`` for ``stacks``."""
    from infra.policy.pack_config import STRICTEST_LEVEL

    if provider not in TARGETS:
        raise CiError(f"unknown CI provider {provider!r} (expected github or azure)")
    if not stacks:
        raise CiError("no stacks: stacks/Pulumi.<stack>.yaml files are needed")
    template, _ = TARGETS[provider]
    values = {
        "stacks": stacks,
        "stack_names": [s.name for s in stacks],
        "levels_json": json.dumps({s.name: s.level for s in stacks}, separators=(",", ":")),
        "strictest_level": STRICTEST_LEVEL,
        "main_branch": main_branch,
        "python_version": PYTHON_VERSION,
        "pulumi_version": _pulumi_version(),
        "actions": GITHUB_ACTIONS,
        "comment_marker": COMMENT_MARKER,
    }
    return str(_environment().get_template(template).render(**values))


def init_ci(root: Path, provider: Provider, force: bool) -> list[Path]:
    """Write ``provider``'s pipeline for the stacks under ``root``; refuse to overwrite unless ``force``.

    Returns the files written. Raises :class:`CiError` (nothing written) for an unknown provider,
    no stacks, or an existing file without ``force``.
    """
    if provider not in TARGETS:
        raise CiError(f"unknown CI provider {provider!r} (expected github or azure)")
    _, target = TARGETS[provider]
    path = root / target
    if path.exists() and not force:
        raise CiError(f"{path} exists: pass --force to replace it")
    text = render_pipeline(provider, stacks_of(root))
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(text, encoding="utf-8")
    staging.replace(path)
    return [path]


def init_ci_command(root: Path, provider: str, force: bool) -> int:
    """CLI wrapper: 0 written, 2 error (one line on stderr)."""
    import sys

    try:
        written = init_ci(root, provider, force)  # type: ignore[arg-type]
    except (CiError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0
