"""Everything a stack deploys, as files: one per object, deterministic names and order.

Kubernetes objects are manifests (``<namespace>/<kind>[.<group>]--<name>.yaml``). What is not a
Kubernetes object still deploys and is reviewed like one: each Helm release is a record under
``_helm/<namespace>/<release>.yaml`` (chart repository, chart, pinned version, namespace, and the values
slm-deploy passes: its own defaults merged with the stack's settings), and each cloud resource is a record
under ``_<provider>/<module>.<Type>--<name>.yaml`` with its inputs; the stack's waivers, when it has any,
are ``_stack/waivers.yaml`` (exceptions change the gate). Records carry ``kind`` and ``metadata``
but no ``apiVersion``: schema validation and checkov see only Kubernetes objects, ``diff`` sees all.
Secrets are redacted everywhere.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.config.clock import today
from infra.plan.model import SECRET_TEXT, RecordedResource, Secret, redact

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

    @property
    def is_kubernetes(self) -> bool:
        """A Kubernetes object (a review record of a Helm release or a cloud resource is not)."""
        return "apiVersion" in self.document


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
    """A Secret's keys stay visible for review; every value reads ``[secret]`` (whatever a file held).

    Works on recorded inputs too, where ``data``/``stringData`` may be a whole secret: its keys are kept.
    """
    if document.get("kind") != "Secret" or document.get("apiVersion") != "v1":
        return document
    cleaned = dict(document)
    for field in _SECRET_DATA_FIELDS:
        values = cleaned.get(field)
        if isinstance(values, Secret):
            values = values.value
        if isinstance(values, dict):
            cleaned[field] = {key: SECRET_TEXT for key in values}
        elif values is not None:
            cleaned[field] = SECRET_TEXT
    return cleaned


HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
#: Inputs of a Helm release shown under ``chart`` (the rest, but values, under ``options``).
_CHART_INPUTS = ("name", "namespace", "chart", "version", "repositoryOpts", "values")


def is_kubernetes_object(resource: RecordedResource) -> bool:
    return (
        resource.custom and resource.type.startswith("kubernetes:") and not resource.type.startswith("kubernetes:helm")
    )


def review_records(resources: Iterable[RecordedResource]) -> list[Manifest]:
    """A record of each Helm release and each cloud resource (not providers: they hold credentials only)."""
    found = []
    for resource in resources:
        if not resource.custom or is_kubernetes_object(resource) or resource.type.startswith("pulumi:providers:"):
            continue
        inputs = redact(resource.inputs)
        if resource.type == HELM_RELEASE:
            name, namespace = str(inputs.get("name") or resource.name), str(inputs.get("namespace") or "default")
            document: dict[str, Any] = {
                "kind": "HelmRelease",
                "metadata": {"name": name, "namespace": namespace},
                "chart": {
                    "repository": (inputs.get("repositoryOpts") or {}).get("repo"),
                    "name": inputs.get("chart"),
                    "version": inputs.get("version"),
                },
                "values": inputs.get("values") or {},
                "options": {k: v for k, v in inputs.items() if k not in _CHART_INPUTS},
                "resource": resource.name,
            }
            path = f"_helm/{namespace}/{name}.yaml"
        else:
            provider, module, type_name = [*resource.type.split(":"), "", ""][:3]
            document = {"kind": type_name, "metadata": {"name": resource.name}, "type": resource.type, "inputs": inputs}
            path = f"_{provider}/{module}.{type_name}--{resource.name}.yaml"
        found.append(Manifest(path=path, urn=resource.urn, document=_canonical(document)))
    return sorted(found, key=lambda m: m.path)


def _annotated(document: dict[str, Any], annotations: dict[str, str] | None) -> dict[str, Any]:
    if not annotations:
        return document
    metadata = dict(document.get("metadata") or {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), **annotations}
    return {**document, "metadata": metadata}


def stack_manifests(plan: StackPlan) -> list[Manifest]:
    """Everything ``render`` writes for a planned stack: the manifests, with checkov skip annotations for
    the waivers in force today (the policy pack's own matcher decides which those are), then the review
    records of Helm releases and cloud resources."""
    from policies.lib.waivers import checkov_skip_annotations
    from policies.registry import CHECKOV_IDS

    waivers = plan.config.waiver_list
    skips = checkov_skip_annotations(waivers, CHECKOV_IDS, today()) if waivers else {}
    records = review_records(plan.run.resources)
    if plan.config.waivers:
        # Exceptions change the gate: a reviewer sees each one added, changed or removed.
        document = {
            "kind": "Waivers",
            "metadata": {"name": plan.stack},
            "waivers": [waiver.entry() for waiver in plan.config.waivers],
        }
        records.append(Manifest(path="_stack/waivers.yaml", urn="", document=_canonical(document)))
    records.append(target_record(plan))
    return manifests(plan.run.resources, skips) + records


def target_record(plan: StackPlan) -> Manifest:
    """Where the stack deploys (context, or subscription, resource group and cluster name): a change of target
    changes no Kubernetes object, but it moves the whole stack, so diff shows it."""
    from infra.policy.targets import plan_target, stack_subscription

    cluster = plan.config.cluster.model_dump(mode="json", by_alias=True)
    target = plan_target(plan)
    fields = {key: cluster.get(key) for key in ("mode", "context", "name", "resourceGroup", "location")}
    if cluster.get("mode") == "aks":
        fields["subscription"] = stack_subscription(plan.stack_file) or "(the provider's default)"
    elif not cluster.get("context"):
        fields["context"] = "(the kubeconfig's current context)"
    document = {
        "kind": "Target",
        "metadata": {"name": plan.stack},
        "target": {k: v for k, v in fields.items() if v is not None},
        "id": target.value if target else None,
    }
    return Manifest(path="_stack/target.yaml", urn="", document=_canonical(document))


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
        document = _canonical(_annotated(redact(redact_secret_data(resource.inputs)), added))
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


#: Plain scalars that YAML 1.1 readers (kubectl and the API server, through go-yaml) take for booleans, while
#: the YAML 1.2 writer below leaves them unquoted: a VerticalPodAutoscaler's ``updateMode: Off`` would reach the
#: cluster as ``false``.
_YAML11_BOOLEANS = frozenset(
    word
    for base in ("y", "yes", "n", "no", "true", "false", "on", "off")
    for word in {base, base.capitalize(), base.upper()}
)


def _quoted_yaml11_booleans(representer: Any, value: str) -> Any:
    if value in _YAML11_BOOLEANS:
        return representer.represent_scalar("tag:yaml.org,2002:str", value, style="'")
    return representer.represent_str(value)


def to_yaml(document: dict[str, Any]) -> str:
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    yaml.representer.add_representer(str, _quoted_yaml11_booleans)
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
