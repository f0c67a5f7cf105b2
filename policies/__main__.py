"""Policy pack entry point for the Pulumi CLI: builds the PolicyPack, which serves and blocks.

Never import this module from tests or tools; import :mod:`policies.pack` instead.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pack
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name=pack.PACK_NAME,
    policies=pack.POLICIES,
    enforcement_level=EnforcementLevel.ADVISORY,
    description=pack.PACK_DESCRIPTION,
)
