"""An installed slm-deploy needs no checkout: the wheel carries the templates, the policy pack and its config."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from tests.conftest import ROOT


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_the_wheel_validates_plans_and_checks_a_stack_directory_outside_the_checkout(tmp_path: Path) -> None:
    # Build from a copy of what the package is made of, so nothing is written into the checkout.
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("infra", "policies", "templates"):
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    for file in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy(ROOT / file, source / file)
    wheels = tmp_path / "wheels"
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(source)], tmp_path
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("slm_deploy-*.whl")
    # The top-level templates/ folder, every file of it, inside the package.
    import zipfile

    shipped = set(zipfile.ZipFile(wheel).namelist())
    templates = {f"infra/templates/{p.relative_to(ROOT / 'templates')}" for p in (ROOT / "templates").rglob("*.j2")}
    assert templates and templates <= shipped, templates - shipped
    for kind in ("ci/github-workflow.yml.j2", "monitoring/rules/", "monitoring/dashboards/", "ollama/Modelfile.j2",
                 "docker/onnx-server.Dockerfile.j2"):  # fmt: skip
        assert any(name.startswith(f"infra/templates/{kind}") for name in shipped), kind

    # A fresh environment with only the wheel; its dependencies come from the test's own environment.
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    installed = _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet", str(wheel)], tmp_path
    )
    assert installed.returncode == 0, installed.stderr
    site_packages = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp_path).stdout.strip()
    )
    (site_packages / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")

    # A stack directory elsewhere, holding nothing but stacks/.
    project = tmp_path / "project"
    shutil.copytree(ROOT / "stacks", project / "stacks")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run(
        [str(python), "-c", "import infra, policies; print(infra.__file__); print(policies.__file__)"], work, env
    )
    assert where.returncode == 0, where.stderr
    assert all(str(env_dir) in line for line in where.stdout.splitlines()), where.stdout

    cli = str(env_dir / "bin" / "slm-deploy")
    validated = _run([cli, "validate", "--stack", "dev", "--root", str(project)], work, env)
    assert validated.returncode == 0, validated.stderr
    assert "valid (" in validated.stdout
    planned = _run([cli, "plan", "--stack", "dev", "--root", str(project), "--format", "json"], work, env)
    assert planned.returncode == 0, planned.stderr
    checked = _run([cli, "check", "--stack", "dev", "--root", str(project), "--format", "json"], work, env)
    assert checked.returncode == 0, checked.stderr
    rendered = _run(
        [cli, "render", "--stack", "dev", "--root", str(project), "--out", str(tmp_path / "out")], work, env
    )
    assert rendered.returncode == 0, rendered.stderr
    # The Ollama Modelfile template came from the package.
    assert any((tmp_path / "out").rglob("*.yaml"))
    # The pipelines for this folder, from the package's CI templates, for the installed package.
    written = _run([cli, "init-ci", "github", "--root", str(project)], work, env)
    assert written.returncode == 0, written.stderr
    workflow = (project / ".github" / "workflows" / "slm-deploy.yml").read_text()
    assert 'pip install --quiet "slm-deploy==' in workflow and "-e ." not in workflow
