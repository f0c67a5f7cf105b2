"""Every name the program derives is checked at validate time as the API server will check it.

A name the cluster would refuse, a reserved or shared namespace, or two objects that would be one are a
one-line config error naming the stack file and key (exit 2, no traceback, well under 2 s). The inventory
in ``infra/config/objects.py`` mirrors the components: the plans below check it names what they create.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from infra.cli import app
from infra.config import k8s_names
from infra.config.conflicts import vllm_engine_flags, vllm_flag_name
from infra.config.loader import StackConfigError, validate_stack_config
from infra.config.objects import (
    ENTRY_POINT_API_KEY_SECRET,
    derived_objects,
)
from infra.config.secrets import SecretValue
from infra.config.stack import StackConfig
from infra.plan.engine import run_program
from infra.platform import deploy

VLLM = {"engine": "vllm", "modelId": "Qwen/Qwen3-0.6B", "gpu": {"count": 1}}
ENTRY: dict[str, Any] = {
    "enabled": True,
    "hostname": "llm.example.com",
    "tls": {"issuerRef": {"name": "letsencrypt"}},
}
KEY_VAULT = {
    "backend": "azure-keyvault",
    "keyVault": {"name": "kv-slm", "resourceGroup": "rg-slm", "location": "westeurope"},
    "oidcIssuerUrl": "https://westeurope.oic.prod-aks.azure.com/tenant/issuer/",
}


def model(name: str = "chat", **extra: Any) -> dict[str, Any]:
    return {"name": name, **VLLM, **extra}


def config(*models: dict[str, Any], environment: str = "dev", **extra: Any) -> dict[str, Any]:
    return {"environment": environment, "models": list(models or [model()]), **extra}


def _plain(value: Any) -> Any:
    if isinstance(value, SecretValue):
        return {"secure": value.ciphertext}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def refused(values: dict[str, Any], stack_dir: Path) -> tuple[str, str]:
    """Write ``values`` as a stack file, validate it with the CLI: (key path, message) of its one error line."""
    document = {"config": {f"slm-deploy:{key}": _plain(value) for key, value in values.items()}}
    (stack_dir / "stacks" / "Pulumi.t.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    started = time.monotonic()
    result = CliRunner().invoke(app, ["validate", "--stack", "t", "--root", str(stack_dir)])
    assert time.monotonic() - started < 2
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    _, _, rest = line.partition("Pulumi.t.yaml: ")
    assert rest, line
    # The same error as the loader raises in-process.
    with pytest.raises(StackConfigError) as caught:
        validate_stack_config(values, "stacks/Pulumi.t.yaml")
    assert rest == f"{caught.value.key_path}: {caught.value.message}"
    key_path, _, message = rest.partition(": ")
    return key_path, message


# --- the rules themselves -----------------------------------------------------------------------------------

RULE_CASES = [
    (k8s_names.DNS_LABEL, ["a", "slm-qwen3", "a" * 63, "0abc"], ["", "a" * 64, "A", "a_b", "-a", "a-", "a\n", "a.b"]),
    (k8s_names.DNS_1035_LABEL, ["chat", "a1-b"], ["3b-chat", "a" * 64, "chat\n", "Chat"]),
    (
        k8s_names.DNS_SUBDOMAIN,
        ["a.b", "azurefile-csi-premium", "managed-csi", "a" * 63 + "." + "b" * 63],
        ["a..b", ".a", "a.", "A", "a" * 254, "a b", "managed\n"],
    ),
    (k8s_names.LABEL_VALUE, ["", "v0.14.0", "A_b.c-1", "a" * 63], ["_v1", "v1.", "a" * 64, "a b", "1.0\n"]),
    (k8s_names.LABEL_KEY, ["app", "example.com/team", "a/b"], ["/a", "Example.com/a", "a/", "a b", "x" * 64]),
    (
        k8s_names.IMAGE_REPOSITORY,
        ["vllm/vllm-openai", "ollama/ollama", "myregistry.azurecr.io/slm/onnx-server", "localhost:5000/a", "a__b"],
        ["vllm/VLLM", "vllm/vllm-openai:v1", "a b", "a/b\n", "/a", "a//b", "a/-b", "a" * 256, "reg.io/a@sha256:x"],
    ),
    (k8s_names.IMAGE_TAG, ["v0.14.0", "_x", "1.2.3-rc.1", "a" * 128], ["", "-x", ".x", "a" * 129, "v1 2", "v1\n"]),
    (k8s_names.IMAGE_DIGEST, ["sha256:" + "0" * 64], ["sha256:" + "g" * 64, "sha256:" + "A" * 64, "md5:x"]),
    (
        k8s_names.HF_REPO_ID,
        ["Qwen/Qwen3-0.6B", "gpt2", "microsoft/Phi-4-mini-instruct-onnx", "a_b/c.d"],
        ["a/b/c", "-a/b", "a/b-", "a--b/c", "a/b..c", "a/b.git", "a b/c", "a/" + "b" * 97, "Qwen/Qwen3\n"],
    ),
    (k8s_names.VLLM_MODEL, ["/models/hf/qwen", "Qwen/Qwen3-0.6B"], ["/models/../etc", "/models/a b", "-x"]),
    (
        k8s_names.OLLAMA_MODEL,
        ["qwen3:0.6b", "phi4-mini", "library/qwen3:latest", "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"],
        ["qwen3 :0.6b", "a:b:c", "-x", "x\nFROM y", "a/b/c/d", "ns.x/model", "m:" + "t" * 81, ""],
    ),
    (k8s_names.SERVED_MODEL_NAME, ["qwen3-1.7b", "phi-4-mini", "My Model"], ["", " a", 'a"b', "a\\b", "a\nb"]),
    (k8s_names.DATA_KEY, ["hfToken", "hf_token", "a.b-c"], ["hf token", "a/b", ""]),
    (k8s_names.KEY_VAULT_SECRET, ["slm-chat-hfToken"], ["slm-chat-hf_token", "a" * 128]),
]


@pytest.mark.parametrize(("rule", "good", "bad"), RULE_CASES, ids=[rule.title for rule, _, _ in RULE_CASES])
def test_rules_accept_and_refuse_as_the_api_server(rule: k8s_names.NameRule, good: list[str], bad: list[str]) -> None:
    assert [value for value in good if rule.problem(value) is not None] == []
    assert [value for value in bad if rule.problem(value) is None] == []


def test_a_refusal_says_which_rule_and_why_on_one_line() -> None:
    with pytest.raises(ValueError) as caught:
        k8s_names.refuse(k8s_names.DNS_LABEL, "bad\nname")
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith("'bad\\nname' is not a DNS-1123 label: '\\n' is not allowed")


# --- each derived name, through the loader --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "where", "message"),
    [
        (
            config(model("a" * 60)),
            "slm-deploy:models[0].name",
            "the namespace of model 'aaaa",
        ),
        (
            config(model("3b-chat")),
            "slm-deploy:models[0].name",
            "the Service of model '3b-chat' would be named '3b-chat', which is not a DNS-1035 label: it must start "
            "with a lower-case letter",
        ),
        (
            config(
                {
                    "name": "e" * 57,
                    "engine": "onnx",
                    "modelId": "microsoft/Phi-4-mini-instruct-onnx",
                    "namespace": "edge",
                    "image": {"repository": "myregistry.azurecr.io/slm/onnx-server", "tag": "0.1.0"},
                    "onnx": {
                        "prepare": {
                            "source": "microsoft/Phi-4-mini-instruct",
                            "image": {"repository": "myregistry.azurecr.io/slm/onnx-prepare", "tag": "0.1.0"},
                        }
                    },
                }
            ),
            "slm-deploy:models[0].name",
            "which is not a label value: 65 characters, at most 63 allowed",
        ),
        (
            config(model(image={"repository": "vllm/vllm-openai", "tag": "v0.14.0-" + "x" * 60})),
            "slm-deploy:models[0].image.tag",
            "the version label of model 'chat' (its image tag) would be app.kubernetes.io/version=",
        ),
        (
            config(model(image={"repository": "vllm/vllm-openai", "tag": "_v1"})),
            "slm-deploy:models[0].image.tag",
            "it must start with a letter or digit",
        ),
        (
            config(model(namespace="kube-system")),
            "slm-deploy:models[0].namespace",
            "the namespace of model 'chat' would be 'kube-system', a namespace Kubernetes itself owns",
        ),
        (
            config(model("system"), model("public", namespace="default")),
            "slm-deploy:models[1].namespace",
            "a namespace Kubernetes itself owns",
        ),
        (
            config(model(namespace="monitoring")),
            "slm-deploy:models[0].namespace",
            "which is already the monitoring namespace (slm-deploy:monitoring.namespace)",
        ),
        (
            config(model(namespace="observability"), monitoring={"mode": "existing", "namespace": "observability"}),
            "slm-deploy:models[0].namespace",
            "which is already the monitoring namespace (slm-deploy:monitoring.namespace)",
        ),
        (
            config(model(namespace="keda"), keda={"install": True}),
            "slm-deploy:models[0].namespace",
            "which is already KEDA's namespace (slm-deploy:keda.namespace)",
        ),
        (
            config(model(namespace="envoy-gateway-system"), entryPoint=dict(ENTRY, models=["chat"])),
            "slm-deploy:models[0].namespace",
            "which is already Envoy Gateway's namespace (slm-deploy:entryPoint.controllerNamespace)",
        ),
        (
            # Not routed through the entry point, still in its namespace: one Namespace, two owners.
            config(model(), model("other", namespace="slm-gateway"), entryPoint=dict(ENTRY, models=["chat"])),
            "slm-deploy:models[1].namespace",
            "which is already the entry point's namespace (slm-deploy:entryPoint.namespace)",
        ),
        (
            config(model("a", namespace="slm-b"), model("b")),
            "slm-deploy:models[1].name",
            "the namespace of model 'b' would be Namespace 'slm-b', which is already the namespace of model 'a' "
            "(slm-deploy:models[0].namespace)",
        ),
        (
            config(monitoring={"namespace": "keda"}, keda={"install": True}),
            "slm-deploy:keda.namespace",
            "which is already the monitoring namespace (slm-deploy:monitoring.namespace)",
        ),
        (
            config(entryPoint=dict(ENTRY, installController=True, controllerNamespace="slm-gateway")),
            "slm-deploy:entryPoint.controllerNamespace",
            "which is already the entry point's namespace (slm-deploy:entryPoint.namespace)",
        ),
        (
            config(entryPoint=dict(ENTRY, tls={"secretName": "slm-api-keys"}, existingApiKeySecret="slm-api-keys")),
            "slm-deploy:entryPoint.existingApiKeySecret",
            "which is already the entry point's TLS Secret (slm-deploy:entryPoint.tls.secretName)",
        ),
        (
            config(
                entryPoint=dict(ENTRY, tls={"secretName": ENTRY_POINT_API_KEY_SECRET}, apiKeys="keys"),
                secrets={"keys": SecretValue(ciphertext="v1:AAAA")},
            ),
            "slm-deploy:entryPoint.apiKeys",
            "the Secret of the API keys would be Secret 'slm-entry-point-api-keys' in namespace 'slm-gateway'",
        ),
        (
            config(
                monitoring={
                    "grafanaAdminSecret": "slm-alert-receivers",
                    "receivers": [{"name": "ops", "type": "slack", "urlSecret": "slack"}],
                },
                secrets={"slack": SecretValue(ciphertext="v1:AAAA")},
            ),
            "slm-deploy:monitoring.receivers",
            "which is already Grafana's admin Secret (slm-deploy:monitoring.grafanaAdminSecret)",
        ),
        (
            config(
                model("a-b", hfTokenSecret="c", cache={"accessMode": "ReadWriteMany"}),
                model("a", hfTokenSecret="b-c"),
                secrets={"c": SecretValue(ciphertext="v1:A"), "b-c": SecretValue(ciphertext="v1:B")},
                secretStore=KEY_VAULT,
            ),
            "slm-deploy:models[1].hfTokenSecret",
            "the Key Vault secret of model 'a' would be Key Vault secret 'slm-a-b-c' in namespace 'vault kv-slm', "
            "which is already the Key Vault secret of model 'a-b' (slm-deploy:models[0].hfTokenSecret)",
        ),
        (
            config(
                model("chat", hfTokenSecret="hf_token"),
                secrets={"hf_token": SecretValue(ciphertext="v1:A")},
                secretStore=KEY_VAULT,
            ),
            "slm-deploy:models[0].hfTokenSecret",
            "which is not a Key Vault secret name: only letters, digits and '-' are allowed",
        ),
        (
            config(
                model("c" * 59, hfTokenSecret="hf"),
                secrets={"hf": SecretValue(ciphertext="v1:A")},
                secretStore=KEY_VAULT,
            ),
            "slm-deploy:models[0].name",
            "which is not a federated identity credential name: 123 characters, at most 120 allowed",
        ),
        (
            config(model(cache={"storageClass": "Premium_LRS"})),
            "slm-deploy:models[0].cache.storageClass",
            "StorageClass name 'Premium_LRS' is not a DNS-1123 subdomain",
        ),
        (
            config(model(hfTokenSecret="hf token"), secrets={"hf token": SecretValue(ciphertext="v1:A")}),
            "slm-deploy:models[0].hfTokenSecret",
            "secret name 'hf token' is not a Secret data key",
        ),
    ],
    ids=[
        "sixty-character-model-name",
        "service-name-starts-with-a-digit",
        "preparation-job-name-over-63",
        "image-tag-too-long-for-a-label",
        "image-tag-not-a-label-value",
        "model-in-kube-system",
        "model-in-default",
        "model-in-the-monitoring-namespace",
        "model-in-an-existing-monitoring-namespace",
        "model-in-the-keda-namespace",
        "model-in-the-controller-namespace",
        "unrouted-model-in-the-gateway-namespace",
        "derived-namespaces-coincide",
        "keda-in-the-monitoring-namespace",
        "controller-in-the-gateway-namespace",
        "tls-and-api-key-secret-are-one",
        "tls-secret-named-like-the-api-key-secret",
        "grafana-secret-named-like-the-receiver-secret",
        "key-vault-secret-names-coincide",
        "key-vault-secret-name-with-underscore",
        "federated-credential-name-too-long",
        "storage-class-not-a-subdomain",
        "secret-name-not-a-data-key",
    ],
)
def test_derived_names_are_checked_at_the_key_they_come_from(
    values: dict[str, Any], where: str, message: str, stack_dir: Path
) -> None:
    key_path, text = refused(values, stack_dir)
    assert key_path == where, text
    assert message in text


@pytest.mark.parametrize(
    ("engine_model", "where", "message"),
    [
        (
            {"engine": "vllm", "modelId": "Qwen/Qwen3\n", "gpu": {"count": 1}},
            "modelId",
            "'Qwen/Qwen3\\n' is not a Hugging",
        ),
        ({"engine": "vllm", "modelId": "Qwen/Qwen3/0.6B", "gpu": {"count": 1}}, "modelId", "more than one '/'"),
        ({"engine": "vllm", "modelId": "--trust-remote-code", "gpu": {"count": 1}}, "modelId", "is not a Hugging"),
        ({"engine": "ollama", "modelId": "qwen3:0.6b\nADAPTER /x"}, "modelId", "is not an Ollama model name"),
        ({"engine": "ollama", "modelId": "Qwen/Qwen3-0.6B:latest:x"}, "modelId", "is not an Ollama model name"),
        (
            {"engine": "ollama", "modelId": "qwen3:0.6b", "servedModelName": "my model"},
            "servedModelName",
            "is not an Ollama model name",
        ),
        (
            {"engine": "vllm", "modelId": "Qwen/Qwen3-0.6B", "gpu": {"count": 1}, "servedModelName": 'q"}or vector(1)'},
            "servedModelName",
            "is not a served model name",
        ),
        (
            {
                "engine": "vllm",
                "modelId": "Qwen/Qwen3-0.6B",
                "gpu": {"count": 1},
                "image": {"repository": "vllm/vllm-openai:v0.14.0", "tag": "v0.14.0"},
            },
            "image.repository",
            "the tag and digest go in 'tag' and 'digest'",
        ),
        (
            {
                "engine": "vllm",
                "modelId": "Qwen/Qwen3-0.6B",
                "gpu": {"count": 1},
                "image": {"repository": "vllm/vllm-openai", "tag": "v0.14.0", "digest": "sha256:" + "Z" * 64},
            },
            "image.digest",
            "is not an image digest",
        ),
        (
            {
                "engine": "onnx",
                "modelId": "microsoft/Phi-4-mini-instruct-onnx",
                "image": {"repository": "reg.io/onnx", "tag": "1"},
                "onnx": {"prepare": {"source": "microsoft/Phi 4", "image": {"repository": "reg.io/p", "tag": "1"}}},
            },
            "onnx.prepare.source",
            "is not a Hugging Face repository id",
        ),
    ],
    ids=[
        "model-id-newline",
        "model-id-three-parts",
        "model-id-a-flag",
        "ollama-name-injects-a-line",
        "ollama-name-two-tags",
        "ollama-served-name-with-space",
        "served-name-breaks-promql",
        "repository-with-tag",
        "digest-not-hex",
        "onnx-source-not-a-repo-id",
    ],
)
def test_model_ids_images_and_names_follow_their_engine(
    engine_model: dict[str, Any], where: str, message: str, stack_dir: Path
) -> None:
    key_path, text = refused(config({"name": "chat", **engine_model}), stack_dir)
    assert key_path == f"slm-deploy:models[0].{where}", text
    assert message in text


def test_reference_stacks_derive_valid_names(root: Path) -> None:
    for stack in ("dev", "staging", "prod"):
        result = CliRunner().invoke(app, ["validate", "--stack", stack, "--root", str(root)])
        assert result.exit_code == 0, result.output


# --- through the real console script: one line, exit 2, no traceback, fast --------------------------------------


def _stack_file(stack_dir: Path, name: str, text: str) -> None:
    (stack_dir / "stacks" / f"Pulumi.{name}.yaml").write_text(text)


def console_script(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the installed `slm-deploy`; also the CPU seconds it used (a loaded machine stretches wall time only)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "slm-deploy"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return result, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_a_sixty_character_model_name_is_one_line_in_validate_and_plan(command: str, stack_dir: Path) -> None:
    name = "m" * 60
    _stack_file(
        stack_dir,
        "long",
        "config:\n  slm-deploy:environment: dev\n  slm-deploy:models:\n"
        f"    - {{name: {name}, engine: vllm, modelId: Qwen/Qwen3-0.6B, gpu: {{count: 1}}}}\n",
    )
    result, seconds = console_script(command, "--stack", "long", "--root", str(stack_dir))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "Pulumi.long.yaml: slm-deploy:models[0].name: the namespace of model" in lines[0]
    assert f"'slm-{name}'" in lines[0]
    assert "shorten the name to at most 59 characters, or set namespace" in lines[0]
    assert seconds < 2, seconds


def test_a_service_name_error_through_the_console_script(stack_dir: Path) -> None:
    _stack_file(
        stack_dir,
        "digit",
        "config:\n  slm-deploy:environment: dev\n  slm-deploy:models:\n"
        "    - {name: 7b-chat, engine: vllm, modelId: Qwen/Qwen3-0.6B, gpu: {count: 1}}\n",
    )
    result, seconds = console_script("validate", "--stack", "digit", "--root", str(stack_dir))
    assert seconds < 2, seconds
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "Pulumi.digit.yaml: slm-deploy:models[0].name: the Service of model '7b-chat'" in line
    assert "DNS-1035 label" in line
    assert "Traceback" not in result.stderr + result.stdout


# --- the inventory mirrors what the components create ----------------------------------------------------------

RICH = config(
    model(
        "chat",
        hfTokenSecret="hf",
        autoscaling={"enabled": True, "minReplicas": 1, "maxReplicas": 3},
        cache={"accessMode": "ReadWriteMany", "storageClass": "azurefile-csi-premium"},
    ),
    model("scaled", autoscaling={"enabled": True, "backend": "hpa"}, cache={"accessMode": "ReadWriteMany"}),
    {
        "name": "micro",
        "engine": "ollama",
        "modelId": "qwen3:0.6b",
        "namespace": "ollama-micro",
        "ollama": {"modelfile": {"system": "Be brief.", "parameters": {"stop": "<|im_end|>"}}},
    },
    {
        "name": "edge",
        "engine": "onnx",
        "modelId": "microsoft/Phi-4-mini-instruct-onnx",
        "hfTokenSecret": "hf",
        "image": {"repository": "myregistry.azurecr.io/slm/onnx-server", "tag": "0.1.0"},
        "onnx": {
            "prepare": {
                "source": "microsoft/Phi-4-mini-instruct",
                "image": {"repository": "myregistry.azurecr.io/slm/onnx-prepare", "tag": "0.1.0"},
            }
        },
    },
    secrets={"hf": SecretValue(ciphertext="v1:AAAA"), "keys": SecretValue(ciphertext="v1:BBBB")},
    keda={"install": True},
    entryPoint=dict(ENTRY, installController=True, apiKeys="keys", models=["chat", "edge"]),
)


def _kubernetes_objects(stack: StackConfig) -> set[tuple[str, str | None, str]]:
    run = run_program(lambda: deploy(stack), "names", preview=False)
    found = set()
    for recorded in run.resources:
        if not recorded.custom or not recorded.type.startswith("kubernetes:"):
            continue
        metadata = recorded.inputs.get("metadata") or {}
        if isinstance(metadata.get("name"), str):
            namespace = metadata.get("namespace")
            found.add((recorded.kind, namespace if isinstance(namespace, str) else None, metadata["name"]))
    return found


@pytest.mark.parametrize("values", [RICH, dict(RICH, secretStore=KEY_VAULT)], ids=["kubernetes", "azure-keyvault"])
def test_the_inventory_names_what_the_components_create(values: dict[str, Any]) -> None:
    stack = validate_stack_config(values, "test")
    planned = _kubernetes_objects(stack)
    listed = {(o.kind, o.namespace, o.name) for o in derived_objects(stack) if o.creates and not o.by}
    kubernetes_kinds = {kind for kind, _, _ in planned}
    # Everything the inventory says is created (Kubernetes objects) is created, under that name.
    assert {o for o in listed if o[0] in kubernetes_kinds or o[0] == "Namespace"} - planned == set()
    assert {o for o in listed if o[0] not in kubernetes_kinds and o[0] != "Namespace"} <= {
        ("Key Vault secret", "vault kv-slm", "slm-chat-hf"),
        ("Key Vault secret", "vault kv-slm", "slm-edge-hf"),
        ("federated identity credential", "identity id-slm-chat", "slm-chat-chat"),
        ("federated identity credential", "identity id-slm-edge", "slm-edge-edge"),
    }
    # Every object named after a model (or in a model's namespace, named after it) is in the inventory.
    names = [m.name for m in stack.models]
    after_a_model = {o for o in planned if any(o[2] == n or o[2].startswith(f"{n}-") for n in names)}
    assert after_a_model - listed == set()
    # Every namespace the stack creates is in the inventory.
    assert {o for o in planned if o[0] == "Namespace"} - listed == set()


def test_every_flag_the_vllm_engine_sets_is_guarded() -> None:
    from infra.engines import context_of
    from infra.engines.vllm import vllm_engine

    full = model(
        servedModelName="chat-api",
        gpu={"count": 2},
        vllm={"maxModelLen": 4096, "maxNumSeqs": 4, "quantization": "awq", "tensorParallelSize": 2, "dtype": "auto"},
    )
    sized = {
        "name": "chat",
        "engine": "vllm",
        "catalog": "qwen3-0.6b",
        "gpu": {"count": 1, "vmSize": "Standard_NC4as_T4_v3"},
        "sizing": {"context": 4096},
    }
    for values in (full, sized):
        stack = validate_stack_config(config(values), "test")
        served = stack.models[0]
        spec = vllm_engine(served, context_of(served, stack))
        emitted = {vllm_flag_name(arg) for arg in spec.args if arg.startswith("-")}
        assert emitted - set(vllm_engine_flags(served, 0)) == set()
