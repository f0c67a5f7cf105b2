"""Label keys a stack may set, and the ones no stack may.

Refused everywhere (``validate`` exits 2, the ``stack-label-keys`` rule reports them): keys under
``kubernetes.io/`` and ``k8s.io/`` (and their subdomains: ``pod-security.kubernetes.io/``,
``node-role.kubernetes.io/`` …), which Kubernetes and the hardening own; ``control-plane`` and
``admissions.enforcer/disabled``, which make AKS's admissions enforcer skip the customer's admission
webhooks for a namespace; keys under ``azure.com`` domains (``kubernetes.azure.com/…``), which AKS owns.

Beyond those, the pack admits what it knows: ``allowedKeys`` of ``stack-label-keys`` (glob patterns whose
``*`` stays within one part of the key; the default ``*`` admits any key without a prefix), so a prefixed
key is admitted only when a level lists it (``example.com/*``).
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

#: Exact keys that change what the platform does with an object.
REFUSED_KEYS = frozenset({"control-plane", "admissions.enforcer/disabled"})
#: Prefix domains (the part before ``/``) owned by Kubernetes or AKS, with their subdomains.
REFUSED_DOMAINS = ("kubernetes.io", "k8s.io", "azure.com")
DEFAULT_ALLOWED_KEYS = ("*",)


def refused(key: str) -> str | None:
    """Why no stack may set ``key``, or ``None``."""
    if key in REFUSED_KEYS:
        return "AKS's admissions enforcer skips the customer's admission webhooks for objects carrying it"
    prefix, slash, _ = key.rpartition("/")
    if slash:
        for domain in REFUSED_DOMAINS:
            if prefix == domain or prefix.endswith(f".{domain}"):
                return f"keys under {domain} belong to {'AKS' if domain == 'azure.com' else 'Kubernetes'}"
    return None


def _match(key: str, pattern: str) -> bool:
    """A glob whose ``*`` stays within the prefix or the name (``*`` does not match ``a.b/c``)."""
    key_parts, pattern_parts = key.split("/"), pattern.split("/")
    return len(key_parts) == len(pattern_parts) and all(
        fnmatchcase(k, p) for k, p in zip(key_parts, pattern_parts, strict=True)
    )


def admitted(key: str, allowed: Iterable[str]) -> bool:
    return refused(key) is None and any(_match(key, pattern) for pattern in allowed)
