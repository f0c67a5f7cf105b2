"""SLM-SRV-002 (stack): behind an entry point that checks API keys, model servers that can check keys do too.

The gateway's ``SecurityPolicy`` (``apiKeyAuth``) guards requests that come through the gateway; the pods the
network policy lets call a model directly skip it. llama.cpp's ``llama-server`` and the project's ONNX server can
check the same keys from a mounted file, so in every namespace an ``HTTPRoute`` (or Envoy AI Gateway's
``AIGatewayRoute``, behind per-client quotas) routes to, such a server must be
pointed at a key file on a mounted Secret:

- ``llama-server`` (its command or first argument ends in ``llama-server``): ``--api-key-file <path>``;
- the ONNX server (it sets ``SLM_ONNX_MODEL_PATH``): ``SLM_ONNX_API_KEYS_FILE`` or ``SLM_ONNX_API_KEY_FILE``;

and the path lies under a volume mount of a ``secret`` (or Secrets Store ``csi``) volume. A server that checks keys
behind a gateway that removes them (``sanitize: true``) would refuse every request: that is reported too.

Not only routed servers: a server whose NetworkPolicy lets pods of other namespaces in other than the gateway's
proxies and Prometheus (``network.ingressFromNamespaces``) is reachable without the gateway's key check, so every
model server there checks keys, whatever its engine and whether or not a gateway exists (a model left out of
``entryPoint.models`` would otherwise answer anyone in ``apps``):

- llama-server and the ONNX server: the key file above;
- vLLM: ``VLLM_API_KEY`` (or ``--api-key $(VAR)``) from a ``secretKeyRef``: the model's own key, which the entry
  point sends in place of the client's (an ``HTTPRouteFilter`` with ``credentialInjection``);
- Ollama checks none;

or its Deployment states why not: the ``slm-deploy.io/unauthenticated-direct-access`` annotation, written from the
typed ``directAccess.unauthenticatedReason`` of the model. One finding per namespace (or address block)
let in, whose subject is that namespace: a waiver of ``apps`` covers no namespace added later.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import StackValidationArgs

from ...lib.finding import Finding
from ...lib.k8s import (
    NETWORK_POLICY,
    UNAUTHENTICATED_REASON,
    WORKLOAD_TYPES,
    annotations_of,
    containers,
    get,
    is_map,
    items,
    labels_of,
    namespace_of,
    pod_template,
)
from ...lib.rule import NSA, SLM, Rule

SECURITY_POLICY = "kubernetes:gateway.envoyproxy.io/v1alpha1:SecurityPolicy"
HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
#: Behind per-client quotas a model is routed by Envoy AI Gateway's route (it becomes an HTTPRoute in the cluster).
AI_GATEWAY_ROUTE = "kubernetes:aigateway.envoyproxy.io/v1beta1:AIGatewayRoute"
ROUTE_TYPES = frozenset({HTTP_ROUTE, AI_GATEWAY_ROUTE})
LLAMA_SERVER_FLAG = "--api-key-file"
ONNX_MARKER = "SLM_ONNX_MODEL_PATH"
ONNX_KEY_VARIABLES = ("SLM_ONNX_API_KEYS_FILE", "SLM_ONNX_API_KEY_FILE")
#: Engines that read the clients' keys from a file; vLLM reads one key from a variable, Ollama none.
KEY_FILE_ENGINES = frozenset({"llama-server", "onnx"})
VLLM_KEY_VARIABLE = "VLLM_API_KEY"
#: vLLM's flag, as its argument parser reads it (``_`` and ``-`` alike, ``--flag=value`` or ``--flag value``).
VLLM_KEY_FLAGS = frozenset({"--api-key", "--api_key"})
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _words(container: Mapping[str, Any]) -> list[str]:
    return [str(t) for t in (*items(get(container, "command")), *items(get(container, "args")))]


def _engine(container: Mapping[str, Any]) -> str | None:
    """``llama-server``, ``onnx``, ``vllm``, ``ollama``, or ``None`` (not a model server the pack knows)."""
    words = _words(container)
    program = words[0].rsplit("/", 1)[-1] if words else ""
    if program == "llama-server":
        return "llama-server"
    names = {str(get(v, "name")) for v in items(get(container, "env")) if is_map(v)}
    if ONNX_MARKER in names:
        return "onnx"
    image = str(get(container, "image", default="")).split("@", 1)[0].rsplit(":", 1)[0]
    if program == "vllm" or any(w.startswith("vllm.entrypoints") for w in words) or image.endswith("/vllm-openai"):
        return "vllm"
    if program == "ollama" or image.endswith("ollama/ollama"):
        return "ollama"
    return None


def _secret_variables(container: Mapping[str, Any]) -> set[str]:
    """The container's variables whose value comes from a Secret (``valueFrom.secretKeyRef``)."""
    return {
        str(get(v, "name"))
        for v in items(get(container, "env"))
        if is_map(v) and is_map(get(v, "valueFrom", "secretKeyRef"))
    }


def _vllm_checks_key(container: Mapping[str, Any]) -> bool:
    """vLLM checks a key from a Secret: ``VLLM_API_KEY`` by ``secretKeyRef``, or ``--api-key $(VAR)`` of such a
    variable (the kubelet expands it). A key written into the spec is no Secret (secrets-by-reference)."""
    from_secret = _secret_variables(container)
    if VLLM_KEY_VARIABLE in from_secret:
        return True
    words = _words(container)
    for index, word in enumerate(words):
        flag, equals, value = word.partition("=")
        if flag not in VLLM_KEY_FLAGS:
            continue
        value = value if equals else (words[index + 1] if index + 1 < len(words) else "")
        if value.startswith("$(") and value.endswith(")") and value[2:-1] in from_secret:
            return True
    return False


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


def _peer_names(peer: Mapping[str, Any]) -> list[str]:
    """What one ``from`` peer of another namespace lets in: namespace names, an address block, or a selector."""
    block = get(peer, "ipBlock", "cidr")
    if block is not None:
        return [f"address block {block}"]
    selector = get(peer, "namespaceSelector")
    named = get(selector, "matchLabels", NAMESPACE_NAME_LABEL)
    if named is not None:
        return [str(named)]
    for expression in items(get(selector, "matchExpressions")):
        if get(expression, "key") == NAMESPACE_NAME_LABEL and get(expression, "operator") == "In":
            return [str(value) for value in items(get(expression, "values"))]
    return [
        "every namespace"
        if not get(selector, "matchLabels") and not get(selector, "matchExpressions")
        else "namespaces selected by labels"
    ]


def _others_let_in(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """The namespaces (or address blocks) a NetworkPolicy lets in, other than the gateway's proxies and Prometheus."""
    if resource_type != NETWORK_POLICY:
        return []
    found: list[str] = []
    for rule in items(get(props, "spec", "ingress")):
        for peer in items(get(rule, "from")):
            if not is_map(get(peer, "namespaceSelector")) and not is_map(get(peer, "ipBlock")):
                continue
            labels = get(peer, "podSelector", "matchLabels", default={})
            if not (is_map(labels) and any(key in labels for key in _OWN_PEER_LABELS)):
                found += [name for name in _peer_names(peer) if name not in found]
    return found


def _forwards_key(policy: Mapping[str, Any]) -> bool:
    return get(policy, "spec", "apiKeyAuth", "sanitize") is not True


def check(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str | None, str]]:
    policies = [
        r for r in args.resources if r.resource_type == SECURITY_POLICY and is_map(get(r.props, "spec", "apiKeyAuth"))
    ]
    routed = {namespace_of(r.props) for r in args.resources if r.resource_type in ROUTE_TYPES}
    reachable: dict[str, list[str]] = {}
    for resource in args.resources:
        for name in _others_let_in(resource.resource_type, resource.props):
            peers = reachable.setdefault(namespace_of(resource.props), [])
            peers += [name] if name not in peers else []
    if not policies and not reachable:
        args.not_applicable("no SecurityPolicy checks API keys and no model server is reachable from other namespaces")
    checking: list[str] = []
    for workload in args.resources:
        namespace = namespace_of(workload.props)
        if workload.resource_type not in WORKLOAD_TYPES or (namespace not in routed and namespace not in reachable):
            continue
        template = pod_template(workload.resource_type, workload.props)
        if template is None:
            continue
        for container in containers(template.spec, ("containers",)):
            engine = _engine(container.body)
            if engine is None or (engine not in KEY_FILE_ENGINES and namespace not in reachable):
                continue
            if engine in KEY_FILE_ENGINES:
                path = _key_file(engine, container.body)
                if path is not None and not any(
                    path.startswith(f"{mount}/") for mount in _secret_mounts(template.spec, container.body)
                ):
                    yield (
                        workload.urn,
                        f"{container.label} of {workload.name} ({engine}) reads its API keys from {path}, which is "
                        "not on a mounted Secret volume",
                    )
                    continue
                if path is not None:
                    checking.append(workload.name)
                    continue
            elif engine == "vllm" and _vllm_checks_key(container.body):
                continue
            if namespace in reachable:
                yield from _unauthenticated(workload, container.label, engine, namespace, reachable[namespace])
            elif policies:
                yield (
                    workload.urn,
                    f"{container.label} of {workload.name} ({engine}) is routed through a gateway that checks API "
                    "keys but checks none itself: point it at the keys mounted from a Secret (add the model to "
                    "entryPoint.models)",
                )
    if checking:
        for policy in policies:
            if not _forwards_key(policy.props):
                yield (
                    policy.urn,
                    f"{policy.name} removes the API key (sanitize: true) before forwarding, but "
                    f"{', '.join(sorted(set(checking)))} check keys and would refuse every request",
                )


def _unauthenticated(
    workload: Any, label: str, engine: str, namespace: str, peers: list[str]
) -> Iterator[tuple[str | None, str]]:
    """One finding per namespace let in (its subject), unless the Deployment says why the server checks no key."""
    if annotations_of(workload.props).get(UNAUTHENTICATED_REASON, "").strip():
        return
    model = labels_of(get(workload.props, "metadata", default={})).get("app.kubernetes.io/instance", workload.name)
    remedy = (
        "Ollama checks no key: state why in the model's directAccess.unauthenticatedReason, or serve it "
        "with another engine"
        if engine == "ollama"
        else "route it through the entry point with API keys (entryPoint.models, entryPoint.modelsCheckKeys) so it "
        "checks a key from a Secret, or state why not in the model's directAccess.unauthenticatedReason"
    )
    for peer in peers:
        yield (
            workload.urn,
            Finding(
                f"model {model} ({engine}, {label} of {workload.name} in {namespace}) is reachable from other "
                f"namespaces without the gateway ({peer}, network.ingressFromNamespaces) but checks no API key: "
                f"{remedy}",
                subject=peer,
            ),
        )


RULE = Rule(
    id="SLM-SRV-002",
    name="model-servers-check-keys",
    title="Model servers check API keys when the entry point uses keys, or when other namespaces reach them",
    severity="medium",
    rationale=(
        "The gateway's key check guards only requests that pass through it; pods allowed by the network policy "
        "reach a model's port directly. A server that checks keys too leaves no unauthenticated way in; one that "
        "cannot must say why in the stack, where a reviewer reads it."
    ),
    remediation=(
        "Keep entryPoint.modelsCheckKeys true (the default) and route the model: llama-server gets --api-key-file "
        "and the ONNX server SLM_ONNX_API_KEYS_FILE on the keys mounted from a Secret in the model's namespace (the "
        "gateway forwards the key), vLLM VLLM_API_KEY from a Secret (the gateway sends the model's own key). For "
        "Ollama, or a stack without keys, set directAccess.unauthenticatedReason."
    ),
    controls={
        NSA: ("Authentication and authorization: defense in depth",),
        SLM: ("Serving engine configuration",),
    },
    kind="stack",
    resource_types=WORKLOAD_TYPES | ROUTE_TYPES | {SECURITY_POLICY, NETWORK_POLICY},
    check=check,
)
