"""``slm-deploy init-ci github|azure``: write the CI/CD pipeline for this repository's stacks.

Two layouts are served (:func:`layout_of`): this project's own repository (the pipelines install it with
``pip install -e .`` and use its ``policies/`` folder), and a folder holding only ``stacks/`` for an installed
slm-deploy (the pipelines install the same version from its package, use the policy pack inside it, and the
folder's own ``policies/config/`` level files when it has them, else the package's; they write the Pulumi
project file a ``pulumi up`` needs, pointing at the package's program). Stacks on an existing cluster get their
own kubeconfig secret each; AKS stacks sign in to Azure with OIDC federated credentials and install kubelogin.

The templates live in ``templates/ci/``. They are Jinja2 with ``[[ … ]]`` / ``[% … %]`` delimiters,
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
from infra.templating import TEMPLATES as TEMPLATE_ROOT

TEMPLATES = TEMPLATE_ROOT / "ci"

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
    # `az login` with OIDC federated credentials (no secret), and kubelogin for AKS stacks' Entra tokens.
    "azure_login": "azure/login@v2",
    "kubelogin": "azure/use-kubelogin@v1",
}
#: The kubelogin release the AKS deploy jobs install (Azure/kubelogin).
KUBELOGIN_VERSION = "v0.2.10"
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
    #: The stack creates an AKS cluster: its jobs sign in to Azure and install kubelogin.
    aks: bool = False

    @property
    def job_id(self) -> str:
        """Azure Pipelines job and stage names allow letters, digits and ``_`` only."""
        return re.sub(r"[^A-Za-z0-9_]", "_", self.name)

    @property
    def kubeconfig_secret(self) -> str:
        """The GitHub secret holding this stack's kubeconfig (base64): one per stack, so stacks of one
        environment may deploy to different clusters."""
        return f"KUBECONFIG_{re.sub(r'[^A-Z0-9]', '_', self.name.upper())}_B64"


@dataclass(frozen=True)
class Layout:
    """Where the pipelines get slm-deploy, its policy pack and its level files."""

    #: This project's own repository (``pip install -e .``, ``policies/``), not a folder of stacks.
    source_checkout: bool
    #: The installed slm-deploy's version: what the pipelines install outside the repository.
    version: str
    #: The folder has its own ``policies/config/`` level files (used instead of the package's).
    own_levels: bool

    def level_dir(self, root: Path) -> Path:
        """The level files the stacks are bound by, as the pipelines will use them."""
        from infra.policy.analyzer import DEFAULT_PACK_DIR

        return root / "policies" / "config" if self.source_checkout or self.own_levels else DEFAULT_PACK_DIR / "config"


def layout_of(root: Path) -> Layout:
    """This project's repository (its pyproject.toml names slm-deploy and it holds the pack), or a stacks folder."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("slm-deploy")
    except PackageNotFoundError:  # pragma: no cover - the CLI runs from the installed package
        installed = "0"
    pyproject = root / "pyproject.toml"
    names_us = pyproject.is_file() and re.search(
        r'^name\s*=\s*"slm-deploy"\s*$', pyproject.read_text(encoding="utf-8"), flags=re.M
    )
    checkout = bool(names_us) and (root / "policies" / "PulumiPolicy.yaml").is_file()
    return Layout(checkout, installed, (root / "policies" / "config").is_dir())

def stacks_of(root: Path, level_dir: Path | None = None) -> list[StackEntry]:
    """The repository's stacks with their bound levels, in deployment order: dev, staging, prod, then by name.

    Levels come from ``level_dir``, by default the installed policy pack's level files
    (:func:`infra.policy.pack_config.bind_level`).
    """
    from infra.config.loader import StackConfigError, load_stack_file, stack_file
    from infra.policy.analyzer import DEFAULT_PACK_DIR
    from infra.policy.pack_config import LEVEL_ORDER, PolicyConfigError, bind_level

    levels = level_dir or DEFAULT_PACK_DIR / "config"
    try:
        entries = []
        for name in stack_names(root):
            mode = load_stack_file(stack_file(name, root)).cluster.mode
            entries.append(StackEntry(name, bind_level(name, levels).level, mode == "existing", mode == "aks"))
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


#: What the pipelines write as the Pulumi program of a stacks folder: the installed package's program.
PROGRAM_DIR = ".slm-deploy-program"


def _environment_script(provider: Provider, layout: Layout) -> str:
    """The shell lines that make ``.venv`` (Pulumi.yaml's virtualenv) with the program and the pack's dependencies;
    outside this repository also the Pulumi project and ``SLM_POLICY_PACK`` (the installed pack's folder)."""
    if layout.source_checkout:
        return "python -m venv .venv\n.venv/bin/python -m pip install --quiet -e . -r policies/requirements.txt\n"
    export = (
        'echo "SLM_POLICY_PACK=$pack" >> "$GITHUB_ENV"'
        if provider == "github"
        else 'echo "##vso[task.setvariable variable=SLM_POLICY_PACK]$pack"'
    )
    return f"""python -m venv .venv
.venv/bin/python -m pip install --quiet "slm-deploy=={layout.version}"
pack="$(.venv/bin/python -c 'import pathlib, policies; print(pathlib.Path(policies.__file__).parent)')"
.venv/bin/python -m pip install --quiet -r "$pack/requirements.txt"
{export}
# The Pulumi project: this folder's stacks/, the installed package's program.
if [ ! -f Pulumi.yaml ]; then
mkdir -p {PROGRAM_DIR}
cat > {PROGRAM_DIR}/__main__.py <<'PROGRAM'
import runpy
runpy.run_module("infra.program", run_name="__main__")
PROGRAM
cat > Pulumi.yaml <<'PROJECT'
name: slm-deploy
runtime:
  name: python
  options:
    toolchain: pip
    virtualenv: .venv
main: {PROGRAM_DIR}
stackConfigDir: stacks
PROJECT
fi
"""


#: Azure Pipelines steps of a stack that creates AKS: kubelogin, and the service connection's federated identity
#: (workload identity federation, no secret) handed to kubelogin's `workloadidentity` login.
AZURE_AKS_STEPS = f"""- task: KubeloginInstaller@0
  displayName: kubelogin (Entra tokens for the AKS cluster's Kubernetes provider)
  inputs:
    kubeloginVersion: {KUBELOGIN_VERSION}
- task: AzureCLI@2
  displayName: Sign in to Azure (the service connection's federated credentials) for kubelogin
  inputs:
    azureSubscription: ${{{{ variables.AZURE_SERVICE_CONNECTION }}}}
    scriptType: bash
    scriptLocation: inlineScript
    addSpnToEnvironment: true
    inlineScript: |
      umask 077
      printf '%s' "$idToken" > "$(Agent.TempDirectory)/azure-identity-token"
      echo "##vso[task.setvariable variable=AZURE_CLIENT_ID]$servicePrincipalId"
      echo "##vso[task.setvariable variable=AZURE_TENANT_ID]$tenantId"
      echo "##vso[task.setvariable variable=AZURE_FEDERATED_TOKEN_FILE]$(Agent.TempDirectory)/azure-identity-token"
      az account show --query name --output tsv
"""


def render_pipeline(
    provider: Provider, stacks: list[StackEntry], main_branch: str = "main", layout: Layout | None = None
) -> str:
    """The pipeline text of ``provider`` for ``stacks`` (in this repository's layout unless ``layout`` says)."""
    from infra.policy.pack_config import STRICTEST_LEVEL

    if provider not in TARGETS:
        raise CiError(f"unknown CI provider {provider!r} (expected github or azure)")
    if not stacks:
        raise CiError("no stacks: stacks/Pulumi.<stack>.yaml files are needed")
    layout = layout or Layout(True, "0", True)
    template, _ = TARGETS[provider]
    pack = "${{ env.SLM_POLICY_PACK }}" if provider == "github" else "$(SLM_POLICY_PACK)"
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
        "kubelogin_version": KUBELOGIN_VERSION,
        "aks_steps": AZURE_AKS_STEPS,
        "aks_json": json.dumps([s.name for s in stacks if s.aks], separators=(",", ":")),
        "install": "python -m pip install --quiet "
        + ("-e ." if layout.source_checkout else f'"slm-deploy=={layout.version}"'),
        "environment_script": _environment_script(provider, layout),
        "policy_pack": "policies" if layout.source_checkout else pack,
        "levels": "policies/config" if layout.source_checkout or layout.own_levels else f"{pack}/config",
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
    layout = layout_of(root)
    text = render_pipeline(provider, stacks_of(root, layout.level_dir(root)), layout=layout)
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
    layout = layout_of(root)
    if not layout.source_checkout:
        levels = "this folder's policies/config/" if layout.own_levels else "the package's level files"
        print(
            f"note: {root} is not the slm-deploy repository: the pipeline installs slm-deploy {layout.version} from "
            f"its package, runs the policy pack inside it with {levels}, and writes Pulumi.yaml for pulumi up",
            file=sys.stderr,
        )
    return 0
