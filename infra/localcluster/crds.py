"""The CustomResourceDefinitions the local cluster installs: published ones where the module proxy serves them,
else made from the project's own strict JSON schemas (infra/plan/crds/*.json).

The local cluster (scripts/local-cluster.sh, and the cluster tests through it) installs these so that
the API server can take the custom resources slm-deploy renders. For Gateway API, Envoy Gateway and the
Inference Extension's InferencePool it installs the releases' own CRDs (``scripts/cluster-tools.sh crds`` copies
them from the pinned modules into ``<bin>/published-crds``, versions in tools/versions.env): renders meet the
upstream validation, CEL rules included. For the other kinds (cert-manager, Secrets Store CSI, Cilium,
Prometheus Operator, KEDA, Karpenter, Envoy AI Gateway: no module of theirs is served with its CRDs) the CRDs
are made from the project's schemas, which carry the structure they describe, turned into Kubernetes
structural schemas:

* ``$ref`` is inlined, ``const`` becomes a one-value ``enum``, an ``enum`` without a ``type`` gets the
  type of its values;
* ``additionalProperties: false`` is dropped: a structural schema prunes unknown fields, and the
  server's strict field validation (kubectl's default) refuses them instead, so a misspelled field is
  still an error;
* a string-or-integer field becomes ``x-kubernetes-int-or-string``; an object with no declared fields
  keeps unknown fields;
* ``if``/``then`` and ``propertyNames`` have no counterpart in a CRD schema and are left out (the JSON
  schema check in infra/plan keeps enforcing them); ``anyOf``/``oneOf``/``allOf``/``not`` of
  ``required`` lists are kept;
* a recursive type (an Alertmanager route's sub-routes) keeps unknown fields below its first level;
* the root's ``metadata`` is left to the API server, which validates object metadata itself.

What the API server then proves: every custom kind rendered is served at the apiVersion rendered,
with the right scope, names valid as the server checks them, no unknown field, and every type,
enum, pattern and bound the schema has, through server-side apply as Pulumi sends it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CRD_SCHEMA_DIR = Path(__file__).resolve().parent.parent / "plan" / "crds"
KIND = "CustomResourceDefinition"
#: Kinds that are cluster-scoped; every other bundled kind is namespaced.
CLUSTER_SCOPED = frozenset(
    {
        ("gateway.networking.k8s.io", "GatewayClass"),
        # Karpenter (AKS node auto-provisioning): both are cluster-scoped in their published CRDs.
        ("karpenter.sh", "NodePool"),
        ("karpenter.azure.com", "AKSNodeClass"),
    }
)

_DROPPED = frozenset({"$schema", "$defs", "title", "if", "then", "else", "propertyNames", "$comment", "examples"})
_JUNCTORS = ("anyOf", "oneOf", "allOf")


def plural(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u"):
        return lower[:-1] + "ies"
    if lower.endswith("s"):
        return lower + "es"
    return lower + "s"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    raise ValueError(f"no structural type for enum value {value!r}")


def _is_int_or_string(types: list[Any]) -> bool:
    return sorted(types) == ["integer", "string"]


def _only_required(node: Any) -> bool:
    """A junctor branch that only lists required fields (allowed in a structural schema)."""
    if not isinstance(node, dict):
        return False
    return all(key == "required" or (key == "not" and _only_required(value)) for key, value in node.items())


def structural(node: dict[str, Any], defs: dict[str, Any], seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The structural-schema counterpart of one JSON-schema node."""
    if "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/$defs/"):
            raise ValueError(f"unsupported $ref {ref}")
        name = ref.removeprefix("#/$defs/")
        if name in seen:
            # A recursive type (an Alertmanager route's sub-routes): a structural schema cannot recurse,
            # so below the first level the object keeps whatever fields it has, as the published CRD does.
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        merged = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
        return structural(merged, defs, (*seen, name))

    out: dict[str, Any] = {}
    types = node.get("type")
    if isinstance(types, list):
        if not _is_int_or_string(types):
            raise ValueError(f"unsupported type list {types}")
        out["x-kubernetes-int-or-string"] = True
    elif types is not None:
        out["type"] = types

    # A quantity or port written as "integer or string" alternatives.
    branches = node.get("anyOf") or node.get("oneOf")
    if branches and all(isinstance(b, dict) and "type" in b for b in branches):
        branch_types = sorted({b["type"] for b in branches})
        if branch_types in (["integer", "string"], ["number", "string"]):
            out.pop("type", None)
            out["x-kubernetes-int-or-string"] = True
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
            patterns = [b["pattern"] for b in branches if "pattern" in b]
            if patterns:
                out["pattern"] = patterns[0]
            branches = None
        else:
            raise ValueError(f"unsupported type alternatives {branches}")

    for key, value in node.items():
        if key in _DROPPED or key in ("type", "$ref"):
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "properties":
            out["properties"] = {name: structural(child, defs, seen) for name, child in value.items()}
        elif key == "items":
            out["items"] = structural(value, defs, seen)
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out["additionalProperties"] = structural(value, defs, seen)
        elif key in _JUNCTORS:
            if branches is None and key in ("anyOf", "oneOf") and "x-kubernetes-int-or-string" in out:
                continue
            if all(_only_required(branch) for branch in value):
                out[key] = value
            elif key == "allOf":
                continue  # if/then pairs: no structural counterpart
            else:
                raise ValueError(f"unsupported {key} {value}")
        elif key == "not":
            if _only_required(value):
                out["not"] = value
        elif key in (
            "enum",
            "pattern",
            "minLength",
            "maxLength",
            "minimum",
            "maximum",
            "minItems",
            "maxItems",
            "minProperties",
            "maxProperties",
            "required",
            "description",
            "format",
            "default",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "uniqueItems",
            "multipleOf",
        ):
            out[key] = value
        else:
            raise ValueError(f"unsupported JSON-schema keyword {key}")

    if "enum" in out and "type" not in out and "x-kubernetes-int-or-string" not in out:
        kinds = {_json_type(v) for v in out["enum"]}
        if len(kinds) != 1:
            raise ValueError(f"enum of mixed types {out['enum']}")
        out["type"] = kinds.pop()
    if "type" not in out and "x-kubernetes-int-or-string" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("uniqueItems"):
        del out["uniqueItems"]  # not allowed in a structural schema; list-type=set says the same
        out["x-kubernetes-list-type"] = "set"
        if out.get("items", {}).get("type") == "object":
            out["items"]["x-kubernetes-map-type"] = "atomic"  # a set's items must be atomic
    return out


def crd_for(schema: dict[str, Any]) -> dict[str, Any]:
    """The CustomResourceDefinition for one bundled schema (one kind at one version)."""
    properties = schema["properties"]
    api_version = properties["apiVersion"]["const"]
    kind = properties["kind"]["const"]
    group, version = api_version.split("/")
    defs = schema.get("$defs", {})
    root_properties = {
        name: structural(child, defs)
        for name, child in properties.items()
        if name not in ("apiVersion", "kind", "metadata")
    }
    root_properties["apiVersion"] = {"type": "string"}
    root_properties["kind"] = {"type": "string"}
    root_properties["metadata"] = {"type": "object"}
    root: dict[str, Any] = {"type": "object", "properties": root_properties}
    required = [name for name in schema.get("required", []) if name not in ("apiVersion", "kind", "metadata")]
    if required:
        root["required"] = required
    annotations = {"slm-deploy.io/made-from": f"infra/plan/crds/{api_version.replace('/', '_')}_{kind}.json"}
    if group.endswith((".k8s.io", ".kubernetes.io")):
        # Groups under k8s.io are protected: the API server asks for the API-review annotation, which
        # may say that this definition is not an approved one.
        annotations["api-approved.kubernetes.io"] = "unapproved, made for a local cluster from slm-deploy's schema"
    names = {"plural": plural(kind), "singular": kind.lower(), "kind": kind, "listKind": f"{kind}List"}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{names['plural']}.{group}",
            "labels": {"app.kubernetes.io/part-of": "slm-deploy-local-cluster"},
            "annotations": annotations,
        },
        "spec": {
            "group": group,
            "names": names,
            "scope": "Cluster" if (group, kind) in CLUSTER_SCOPED else "Namespaced",
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": {"status": {}} if "status" in root_properties else {},
                }
            ],
        },
    }


#: Where ``scripts/cluster-tools.sh crds`` puts the published CRDs, in the tools' bin directory.
PUBLISHED_CRDS = "published-crds"


def published_crds(bin_dir: Path) -> list[dict[str, Any]]:
    """The published CRDs copied into ``bin_dir`` (every YAML document of kind CustomResourceDefinition)."""
    import yaml

    directory = bin_dir / PUBLISHED_CRDS
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is missing (scripts/cluster-tools.sh crds copies it)")
    crds = []
    for path in sorted(directory.glob("*.yaml")):
        crds += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d and d.get("kind") == KIND]
    return crds


def cluster_crds(bin_dir: Path) -> list[dict[str, Any]]:
    """The published CRDs, and the project's own for every other bundled kind, sorted by name."""
    published = published_crds(bin_dir)
    names = {crd["metadata"]["name"] for crd in published}
    own = [crd for crd in project_crds() if crd["metadata"]["name"] not in names]
    return sorted([*published, *own], key=lambda crd: str(crd["metadata"]["name"]))


def project_crds(directory: Path = CRD_SCHEMA_DIR) -> list[dict[str, Any]]:
    """One CRD per bundled schema file, sorted by name."""
    crds = [crd_for(json.loads(path.read_text(encoding="utf-8"))) for path in sorted(directory.glob("*.json"))]
    names = [crd["metadata"]["name"] for crd in crds]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise ValueError(f"two schemas for one kind: {sorted(duplicates)}")
    return crds
