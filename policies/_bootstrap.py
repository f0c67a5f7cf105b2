"""Make this folder importable as the package ``policies`` when it runs as a script.

The Pulumi CLI starts a Python policy pack with ``runpy.run_path(<pack folder>)``: the folder is
``sys.path[0]`` and ``__main__.py`` runs without a parent package, so relative imports would fail.
This module (importable as a top-level module in that situation) loads the folder as the package
``policies`` whatever the folder is called, so every other module can use relative imports.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

PACKAGE = "policies"


def ensure_package() -> ModuleType:
    """The package ``policies`` for this folder, loading it if it is not imported yet."""
    here = Path(__file__).resolve().parent
    existing = sys.modules.get(PACKAGE)
    if existing is not None:
        return existing
    spec = importlib.util.spec_from_file_location(PACKAGE, here / "__init__.py", submodule_search_locations=[str(here)])
    if spec is None or spec.loader is None:  # pragma: no cover - only with a broken install
        raise ImportError(f"cannot load the policy pack package from {here}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)
    return module
