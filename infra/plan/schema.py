"""Strict schema validation of rendered objects for the stack's Kubernetes version."""

from __future__ import annotations

from dataclasses import dataclass

from infra.plan.render import Manifest


@dataclass(frozen=True)
class SchemaResult:
    path: str
    kind: str
    #: ``valid``, ``invalid``, or ``not-checked`` (a custom resource without a bundled schema).
    status: str
    message: str = ""


def validate_manifests(items: list[Manifest], kubernetes_version: str) -> list[SchemaResult]:
    """Check each manifest with kubernetes-validate in strict mode (misspelled fields fail)."""
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError

    from infra.plan.crds import validate_custom_resource

    results = []
    for item in items:
        try:
            kubernetes_validate.validate(item.document, kubernetes_version, strict=True)
        except SchemaNotFoundError:
            # A custom resource: validated against the schema this project ships for it, if any.
            custom = validate_custom_resource(item.document)
            if custom is None:
                results.append(
                    SchemaResult(item.path, item.kind, "not-checked", f"no bundled schema for {item.api_version}")
                )
            else:
                results.append(SchemaResult(item.path, item.kind, custom[0], custom[1]))
        except kubernetes_validate.ValidationError as error:
            # The error copies jsonschema's fields: the message and where in the object it failed.
            where = ".".join(str(p) for p in error.absolute_path)
            detail = error.message
            results.append(SchemaResult(item.path, item.kind, "invalid", f"{where}: {detail}" if where else detail))
        else:
            results.append(SchemaResult(item.path, item.kind, "valid"))
    return results
