"""The stack's own configuration (namespace ``slm-deploy``), as a policy reads it.

Two ways it reaches the pack:

* under the Pulumi CLI, in the analyzer's ``ConfigureStack`` call, made once when the pack starts, with
  the stack's config as plain strings and the names of its secret keys (pulumi/pulumi,
  ``pkg/resource/plugin/analyzer_plugin.go``, ``NewPolicyAnalyzer``). Current CLIs no longer put it
  in the pack's environment (``PULUMI_CONFIG``), and pulumi-policy 1.21's servicer keeps only the
  call's tags, so :func:`keep_engine_config` (called by the pack's ``__main__``) has that call keep the
  config here as well;
* offline (``slm-deploy check``), the driver sets the keys with ``pulumi.runtime.set_config``.

Secret values are kept in neither case: no rule needs one, and a report never shows one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

CONFIG_NAMESPACE = "slm-deploy"

#: The stack's config as the engine's ``ConfigureStack`` sent it (secret keys left out); empty offline.
_from_engine: dict[str, str] = {}


def raw(key: str) -> Any:
    """The value of ``slm-deploy:<key>`` as the engine stores it (a string, JSON for structured values)."""
    name = f"{CONFIG_NAMESPACE}:{key}"
    if name in _from_engine:
        return _from_engine[name]
    import pulumi.runtime

    return pulumi.runtime.get_config(name)


def value(key: str, default: Any = None) -> Any:
    """``slm-deploy:<key>``, parsed from JSON when it is JSON; ``default`` when unset."""
    found = raw(key)
    if found is None or found == "":
        return default
    if isinstance(found, str):
        try:
            return json.loads(found)
        except json.JSONDecodeError:
            return found
    return found


def receive(config: Mapping[str, str], secret_keys: list[str]) -> None:
    """Keep the stack's config from a ``ConfigureStack`` request, without its secret values."""
    secret = set(secret_keys)
    kept = {name: text for name, text in config.items() if name not in secret}
    _from_engine.clear()
    _from_engine.update(kept)


def keep_engine_config() -> None:
    """Make the pack's analyzer keep the config the engine sends with ``ConfigureStack`` (see the module doc).

    pulumi-policy is pinned (1.21.0): its servicer class is private, and a release that changes it fails
    here, loudly, rather than rules quietly seeing no config.
    """
    from pulumi_policy import policy

    servicer = getattr(policy, "_PolicyAnalyzerServicer", None)
    configure_stack = getattr(servicer, "ConfigureStack", None)
    if servicer is None or configure_stack is None:
        raise RuntimeError("pulumi_policy has no _PolicyAnalyzerServicer.ConfigureStack: check its pinned version")
    if getattr(configure_stack, "keeps_stack_config", False):
        return

    def keeping(self: Any, request: Any, context: Any) -> Any:
        receive(dict(request.config), list(request.config_secret_keys))
        return configure_stack(self, request, context)

    keeping.keeps_stack_config = True  # type: ignore[attr-defined]
    servicer.ConfigureStack = keeping
