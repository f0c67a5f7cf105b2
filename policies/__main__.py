"""Policy pack entry point for the Pulumi CLI: builds the PolicyPack, which serves and blocks.

Never import this module from tests or tools; import :mod:`policies.pack` instead.
"""

import importlib
import sys
from pathlib import Path

from pulumi_policy import EnforcementLevel, PolicyPack

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The pack folder is sys.path[0] here, not a package: its entry module is imported by name.
pack = importlib.import_module("pack")
# Current CLIs hand the stack's config to a pack only in ConfigureStack, which pulumi-policy drops.
importlib.import_module("policies.lib.stack_config").keep_engine_config()

PolicyPack(
    name=pack.PACK_NAME,
    policies=pack.POLICIES,
    enforcement_level=EnforcementLevel.ADVISORY,
    description=pack.PACK_DESCRIPTION,
)
