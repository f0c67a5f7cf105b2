"""Fast, safe YAML reading: libyaml's C loader where PyYAML was built with it (it usually is)."""

from __future__ import annotations

from typing import Any

import yaml

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """Parse ``text`` with a safe loader (no arbitrary objects)."""
    return yaml.load(text, Loader=_LOADER)
