"""The wheel carries the top-level templates/ folder (CI pipelines, dashboards, alert rules, Modelfiles,
Dockerfiles) as ``infra/templates``, where an installed slm-deploy reads it (infra/templating.py); everything else
is configured in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TEMPLATES = Path(__file__).resolve().parent / "templates"


class BuildPyWithTemplates(build_py):
    """build_py, then templates/ copied into the built package as infra/templates."""

    def run(self) -> None:
        super().run()
        shutil.copytree(TEMPLATES, Path(self.build_lib) / "infra" / "templates", dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithTemplates})
