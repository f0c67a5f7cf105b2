"""SLM-SRV-002 (stack): behind an entry point that checks API keys, model servers that can check keys do too.

The gateway's ``SecurityPolicy`` (``apiKeyAuth``) guards requests that come through the gateway; the pods the
network policy lets call a model directly skip it. llama.cpp's ``llama-server`` and the project's ONNX server can
check the same keys from a mounted file, so in every namespace an ``HTTPRoute`` routes to, such a server must be
pointed at a key file on a mounted Secret:

- ``llama-server`` (its command or first argument ends in ``llama-server``): ``--api-key-file <path>``;
- the ONNX server (it sets ``SLM_ONNX_MODEL_PATH``): ``SLM_ONNX_API_KEYS_FILE`` or ``SLM_ONNX_API_KEY_FILE``;

and the path lies under a volume mount of a ``secret`` (or Secrets Store ``csi``) volume. A server that checks keys
behind a gateway that removes them (``sanitize: true``) would refuse every request: that is reported too.

Not only routed servers: a server whose NetworkPolicy lets pods of other namespaces in other than the gateway's
proxies and Prometheus (``network.ingressFromNamespaces``) is reachable without the gateway's key check, so a
llama-server or ONNX server there must check keys too (a model left out of ``entryPoint.models`` would
otherwise answer anyone in ``apps``). vLLM
(keys only on its command line) and Ollama (no authentication) are left to the network policy.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import StackValidationArgs

from ...lib.k8s import NETWORK_POLICY, WORKLOAD_TYPES, containers, get, is_map, items, namespace_of, pod_template
from ...lib.rule import NSA, SLM, Rule

SECURITY_POLICY = "kubernetes:gateway.envoyproxy.io/v1alpha1:SecurityPolicy"
HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
LLAMA_SERVER_FLAG = "--api-key-file"
ONNX_MARKER = "SLM_ONNX_MODEL_PATH"
ONNX_KEY_VARIABLES = ("SLM_ONNX_API_KEYS_FILE", "SLM_ONNX_API_KEY_FILE")


def _words(container: Mapping[str, Any]) -> list[str]:
    return [str(t) for t in (*items(get(container, "command")), *items(get(container, "args")))]


def _engine(container: Mapping[str, Any]) -> str | None:
    """``llama-server``, ``onnx`` or ``None`` (a server that cannot check keys from a file)."""
    words = _words(container)
    if words and words[0].rsplit("/", 1)[-1] == "llama-server":
        return "llama-server"
    names = {str(get(v, "name")) for v in items(get(container, "env")) if is_map(v)}
    return "onnx" if ONNX_MARKER in names else None


def _key_file(engine: str, container: Mapping[str, Any]) -> str | None:
    if engine == "llama-server":
        words = _words(container)
        for index, word in enumerate(words):
            if word == LLAMA_SERVER_FLAG and index + 1 < len(words):
                return words[index + 1]
            if word.startswith(f"{LLAMA_SERVER_FLAG}="):
                return word.split("=", 1)[1]
        return None
    for variable in items(get(container, "env")):
        if is_map(variable) and get(variable, "name") in ONNX_KEY_VARIABLES and isinstance(get(variable, "value"), str):
            return str(get(variable, "value"))
    return None


def _secret_mounts(spec: Mapping[str, Any], container: Mapping[str, Any]) -> list[str]:
    """Mount paths of the container's Secret volumes (Kubernetes Secrets or the Secrets Store CSI driver)."""
    secret_volumes = {
        str(get(v, "name"))
        for v in items(get(spec, "volumes"))
        if is_map(v) and (is_map(get(v, "secret")) or is_map(get(v, "csi")))
    }
    return [
        str(get(m, "mountPath")).rstrip("/")
        for m in items(get(container, "volumeMounts"))
        if is_map(m) and str(get(m, "name")) in secret_volumes and get(m, "mountPath")
    ]


#: Pod labels of the peers that have their own way in: the gateway's proxies and Prometheus.
_OWN_PEER_LABELS = ("gateway.envoyproxy.io/owning-gateway-namespace", "app.kubernetes.io/name")


def _lets_others_in(resource_type: str, props: Mapping[str, Any]) -> bool:
    """A NetworkPolicy that admits pods of other namespaces, other than the gateway's proxies and Prometheus."""
    if resource_type != NETWORK_POLICY:
        return False
    for rule in items(get(props, "spec", "ingress")):
        for peer in items(get(rule, "from")):
            if not is_map(get(peer, "namespaceSelector")) and not is_map(get(peer, "ipBlock")):
                continue
            labels = get(peer, "podSelector", "matchLabels", default={})
            if not (is_map(labels) and any(key in labels for key in _OWN_PEER_LABELS)):
                return True
    return False


def _forwards_key(policy: Mapping[str, Any]) -> bool:
    return get(policy, "spec", "apiKeyAuth", "sanitize") is not True


def check(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str | None, str]]:
    policies = [
        r for r in args.resources if r.resource_type == SECURITY_POLICY and is_map(get(r.props, "spec", "apiKeyAuth"))
    ]
    if not policies:
        args.not_applicable("no SecurityPolicy checks API keys")
    routed = {namespace_of(r.props) for r in args.resources if r.resource_type == HTTP_ROUTE}
    reachable = {namespace_of(r.props) for r in args.resources if _lets_others_in(r.resource_type, r.props)}
    checking: list[str] = []
    for workload in args.resources:
        namespace = namespace_of(workload.props)
        if workload.resource_type not in WORKLOAD_TYPES or namespace not in routed | reachable:
            continue
        template = pod_template(workload.resource_type, workload.props)
        if template is None:
            continue
        for container in containers(template.spec, ("containers",)):
            engine = _engine(container.body)
            if engine is None:
                continue
            path = _key_file(engine, container.body)
            if path is None:
                yield (
                    workload.urn,
                    f"{container.label} of {workload.name} ({engine}) "
                    + (
                        "is routed through a gateway that checks API keys"
                        if namespace in routed
                        else "is reachable from other namespaces without the gateway (network.ingressFromNamespaces)"
                    )
                    + " but checks none itself: point it at the keys mounted from a Secret (add the model to "
                    "entryPoint.models)",
                )
            elif not any(path.startswith(f"{mount}/") for mount in _secret_mounts(template.spec, container.body)):
                yield (
                    workload.urn,
                    f"{container.label} of {workload.name} ({engine}) reads its API keys from {path}, which is not "
                    "on a mounted Secret volume",
                )
            else:
                checking.append(workload.name)
    if checking:
        for policy in policies:
            if not _forwards_key(policy.props):
                yield (
                    policy.urn,
                    f"{policy.name} removes the API key (sanitize: true) before forwarding, but "
                    f"{', '.join(sorted(set(checking)))} check keys and would refuse every request",
                )


RULE = Rule(
    id="SLM-SRV-002",
    name="model-servers-check-keys",
    title="Model servers that can check API keys must check them when the entry point uses keys",
    severity="medium",
    rationale=(
        "The gateway's key check guards only requests that pass through it; pods allowed by the network policy "
        "reach a model's port directly. A server that checks the same keys leaves no unauthenticated way in."
    ),
    remediation=(
        "Keep entryPoint.modelsCheckKeys true (the default): llama-server gets --api-key-file and the ONNX server "
        "SLM_ONNX_API_KEYS_FILE on the keys mounted from a Secret in the model's namespace, and the gateway "
        "forwards the key."
    ),
    controls={
        NSA: ("Authentication and authorization: defense in depth",),
        SLM: ("Serving engine configuration",),
    },
    kind="stack",
    resource_types=WORKLOAD_TYPES | {SECURITY_POLICY, HTTP_ROUTE, NETWORK_POLICY},
    check=check,
)
