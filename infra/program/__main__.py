"""The Pulumi program (``main`` in Pulumi.yaml): read the stack's config, declare the platform."""

from __future__ import annotations

import pulumi

from infra.config.loader import StackConfigError, load_from_pulumi
from infra.platform import deploy

try:
    config = load_from_pulumi(pulumi.get_stack())
except StackConfigError as error:
    # RunError prints one clear line instead of a traceback from deep inside the SDK.
    raise pulumi.RunError(str(error)) from None

deploy(config)
