"""Kubernetes manifests from a recorded plan: one file per object, deterministic names and order."""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.config.clock import today
from infra.plan.model import SECRET_TEXT, RecordedResource, redact

if TYPE_CHECKING:
    from infra.plan.stack import StackPlan

#: A render directory carries this file, so a re-render may replace it and nothing else.
MARKER = ".slm-deploy-render"
CLUSTER_SCOPE = "_cluster"
_FIRST_KEYS = ("apiVersion", "kind", "metadata")
_SECRET_DATA_FIELDS = ("data", "stringData")


class RenderError(Exception):
    """The output directory cannot be used."""


@dataclass(frozen=True)
class Manifest:
    """One Kubernetes object as it is rendered."""

    path: str
    urn: str
    document: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.document.get("kind", ""))

    @property
    def api_version(self) -> str:
        return str(self.document.get("apiVersion", ""))


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _canonical(document: dict[str, Any]) -> dict[str, Any]:
    """apiVersion, kind, metadata first; every mapping below sorted by key (lists keep their order)."""
    ordered = {k: _sorted(document[k]) for k in _FIRST_KEYS if k in document}
    ordered.update({k: _sorted(document[k]) for k in sorted(document) if k not in _FIRST_KEYS})
    return ordered


def redact_secret_data(document: dict[str, Any]) -> dict[str, Any]:
    """A Secret's keys stay visible for review; every value reads ``[secret]`` (whatever a file held)."""
    if document.get("kind") != "Secret" or document.get("apiVersion") != "v1":
        return document
    cleaned = dict(document)
    for field in _SECRET_DATA_FIELDS:
        values = cleaned.get(field)
        if isinstance(values, dict):
            cleaned[field] = {key: SECRET_TEXT for key in values}
        elif values is not None:
            cleaned[field] = SECRET_TEXT
    return cleaned


def is_kubernetes_object(resource: RecordedResource) -> bool:
    return (
        resource.custom and resource.type.startswith("kubernetes:") and not resource.type.startswith("kubernetes:helm")
    )


def _annotated(document: dict[str, Any], annotations: dict[str, str] | None) -> dict[str, Any]:
    if not annotations:
        return document
    metadata = dict(document.get("metadata") or {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), **annotations}
    return {**document, "metadata": metadata}


def stack_manifests(plan: StackPlan) -> list[Manifest]:
    """The manifests of a planned stack as ``render`` writes them: with checkov skip annotations for the
    waivers in force today (the policy pack's own matcher decides which those are)."""
    from policies.lib.waivers import checkov_skip_annotations
    from policies.registry import CHECKOV_IDS

    waivers = plan.config.waiver_list
    skips = checkov_skip_annotations(waivers, CHECKOV_IDS, today()) if waivers else {}
    return manifests(plan.run.resources, skips)


def manifests(
    resources: Iterable[RecordedResource], annotations: dict[str, dict[str, str]] | None = None
) -> list[Manifest]:
    """Every Kubernetes object of the plan, redacted, in a stable order.

    ``annotations`` adds annotations by the resource's logical name or URN (checkov skips from waivers).
    """
    found = []
    extra = annotations or {}
    for resource in resources:
        if not is_kubernetes_object(resource):
            continue
        added = {**extra.get(resource.name, {}), **extra.get(resource.urn, {})}
        document = _canonical(_annotated(redact_secret_data(redact(resource.inputs)), added))
        metadata = document.get("metadata") or {}
        namespace = metadata.get("namespace") or CLUSTER_SCOPE
        name = metadata.get("name") or resource.name
        group = document.get("apiVersion", "").split("/")[0] if "/" in document.get("apiVersion", "") else "core"
        kind = str(document.get("kind", resource.kind)).lower()
        path = f"{namespace}/{kind}.{group}--{name}.yaml" if group != "core" else f"{namespace}/{kind}--{name}.yaml"
        found.append(Manifest(path=path, urn=resource.urn, document=document))
    found.sort(key=lambda m: m.path)
    paths = [m.path for m in found]
    duplicates = {p for p in paths if paths.count(p) > 1}
    if duplicates:
        raise RenderError(f"two objects render to the same file: {', '.join(sorted(duplicates))}")
    return found


def to_yaml(document: dict[str, Any]) -> str:
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    stream = io.StringIO()
    yaml.dump(document, stream)
    return stream.getvalue()


def write_render(items: list[Manifest], out: Path) -> list[Path]:
    """Write every manifest below ``out``, replacing an earlier render, atomically.

    Files are written to a sibling temporary directory first; only a complete render takes the
    place of ``out``, so a failure leaves nothing half-written.
    """
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise RenderError(f"{out} exists and is not an earlier render (no {MARKER} file): choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        written = []
        for item in items:
            target = staging / item.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(to_yaml(item.document), encoding="utf-8")
            written.append(out / item.path)
        (staging / MARKER).write_text("rendered by slm-deploy; replaced on every render\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return written
