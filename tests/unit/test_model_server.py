"""The ModelServer component under the Pulumi mock engine, in preview and in update mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from infra.components.model_server import ModelServer, ModelServerArgs
from infra.config import priority
from infra.config.loader import validate_stack_config
from infra.config.model import ModelConfig
from infra.config.network import NetworkConfig
from infra.config.objects import checks_api_keys
from infra.config.quantity import EPHEMERAL_STORAGE_MARGIN, ephemeral_storage
from infra.config.secret_store import SecretStoreConfig
from infra.engines.base import EngineContext
from infra.engines.ollama import ollama_engine
from infra.plan.engine import run_program
from infra.plan.model import Secret
from infra.plan.stack import StackPlan
from infra.platform import deploy
from tests.conftest import REFERENCE_STACKS
from tests.helpers import of_kind, one, pod_spec, served_revisions

MODES = pytest.mark.parametrize("preview", [True, False], ids=["preview", "update"])
PlanOf = Callable[[str, bool], StackPlan]


@MODES
@pytest.mark.parametrize("stack", REFERENCE_STACKS)
def test_every_model_gets_its_objects(stack: str, preview: bool, plan_of: PlanOf) -> None:
    plan = plan_of(stack, preview)
    resources = plan.run.resources
    components = [r for r in resources if r.type == "slm-deploy:serving:ModelServer"]
    assert sorted(c.name for c in components) == sorted(m.name for m in plan.config.models)
    for model in plan.config.models:
        children = [r for r in resources if r.parent and r.parent.endswith(f"ModelServer::{model.name}")]
        kinds = sorted(r.kind for r in children if r.kind not in ("ConfigMap", "ModelAutoscaler"))
        revisions = served_revisions(model)
        claims = {claim for _, _, claim in revisions}
        expected = [
            "Namespace",
            "ServiceAccount",
            # No cache claim when the weights come in an image volume (docs/image-volume-weights.md).
            *(["PersistentVolumeClaim"] * len(claims) if model.has_cache_volume else []),
            *["Deployment", "Service", "PodDisruptionBudget"] * len(revisions),
            "ModelNetworkPolicy",
        ]
        # Recommendations (a VerticalPodAutoscaler) only where the stack asks for them.
        # The server's copy of the stack's API keys where it checks them itself (infra.config.objects).
        keys = ["ModelApiKeys"] if checks_api_keys(plan.config.entry_point, model) else []
        assert kinds == sorted(expected + keys + (["ModelVpa"] if model.vpa.enabled else []))
        for child in children:
            assert child.name.startswith(f"{model.name}-")


@MODES
@pytest.mark.parametrize("stack", REFERENCE_STACKS)
def test_pods_are_hardened(stack: str, preview: bool, plan_of: PlanOf) -> None:
    plan = plan_of(stack, preview)
    for deployment in of_kind(plan.run.resources, "Deployment"):
        spec = pod_spec(deployment)
        assert spec["automountServiceAccountToken"] is False
        assert spec["enableServiceLinks"] is False
        pod_context = spec["securityContext"]
        assert pod_context["runAsNonRoot"] is True
        assert pod_context["runAsUser"] >= 10000
        assert pod_context["fsGroup"] >= 10000
        assert pod_context["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["privileged"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["runAsNonRoot"] is True
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}
            resources = container["resources"]
            for side in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[side])
            assert resources["requests"].get("nvidia.com/gpu") == resources["limits"].get("nvidia.com/gpu")
        for container in spec.get("initContainers", []):
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize("stack", REFERENCE_STACKS)
def test_vllm_container_contract(stack: str, plan_of: PlanOf) -> None:
    plan = plan_of(stack, True)
    served = [(prefix, model, claim) for m in plan.config.models for prefix, model, claim in served_revisions(m)]
    for prefix, model, claim in (s for s in served if s[1].engine == "vllm"):
        spec = pod_spec(one(plan.run.resources, "Deployment", f"{prefix}-deployment"))
        container = spec["containers"][0]
        image = container["image"]
        assert image.startswith("vllm/vllm-openai:v") and ":latest" not in image
        args = container["args"]
        assert args[0] == ("/weights" if model.weights.image_volume else model.model_id)
        assert f"--served-model-name={model.api_model_name}" in args
        assert f"--tensor-parallel-size={model.gpu.count}" in args
        assert "--port=8000" in args
        assert container["ports"] == [{"containerPort": 8000, "name": "http", "protocol": "TCP"}]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
        startup = container["startupProbe"]
        # Minutes, not seconds: room to download and load the weights.
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 600
        env = {e["name"]: e.get("value") for e in container["env"]}
        writable = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/tmp", "/home/vllm", "/dev/shm", "/models"} <= writable
        for variable in ("HOME", "XDG_CACHE_HOME", "TRITON_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR", "NUMBA_CACHE_DIR"):
            assert any(env[variable].startswith(path) for path in writable), variable
        assert env["HF_HOME"].startswith("/models")
        assert env["USER"] == env["LOGNAME"] == "vllm"
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
        if model.weights.image_volume:
            assert model.weights.image is not None
            assert volumes["weights"]["image"]["reference"] == model.weights.image.reference
            assert {"name": "weights", "mountPath": "/weights", "readOnly": True} in container["volumeMounts"]
            assert env["HF_HUB_OFFLINE"] == "1"
        else:
            assert volumes["model-cache"]["persistentVolumeClaim"]["claimName"] == claim
        assert spec["nodeSelector"] == {"slm-deploy.io/gpu-pool": model.gpu.pool}
        assert "initContainers" not in spec
        tolerations = {(t["key"], t.get("value"), t["effect"]) for t in spec["tolerations"]}
        assert ("sku", "gpu", "NoSchedule") in tolerations
        assert ("nvidia.com/gpu", None, "NoSchedule") in tolerations


@pytest.mark.parametrize("stack", REFERENCE_STACKS)
def test_namespaces_labels_and_network(stack: str, plan_of: PlanOf) -> None:
    plan = plan_of(stack, True)
    for model in plan.config.models:
        namespace = one(plan.run.resources, "Namespace", f"{model.name}-namespace")
        labels = namespace.inputs["metadata"]["labels"]
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        service_account = one(plan.run.resources, "ServiceAccount", f"{model.name}-serviceaccount")
        assert service_account.inputs["automountServiceAccountToken"] is False
        for prefix, _, _ in served_revisions(model):
            service = one(plan.run.resources, "Service", f"{prefix}-service")
            assert service.inputs["spec"]["type"] == "ClusterIP"
        deny = one(plan.run.resources, "NetworkPolicy", f"{model.name}-network-default-deny")
        assert deny.inputs["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        model_objects = [r for r in plan.run.resources if "slm-deploy:serving:ModelServer" in r.urn]
        for resource in model_objects:
            if resource.custom and resource.type.startswith("kubernetes:") and resource.kind != "Namespace":
                metadata = resource.inputs["metadata"]
                if resource.parent and model.name in resource.parent:
                    assert metadata["namespace"] == model.k8s_namespace
            if resource.custom and resource.type.startswith("kubernetes:"):
                labels = resource.inputs["metadata"]["labels"]
                for key in ("name", "instance", "version", "component", "part-of", "managed-by"):
                    assert f"app.kubernetes.io/{key}" in labels


@pytest.mark.parametrize("stack", REFERENCE_STACKS)
def test_resource_options(stack: str, plan_of: PlanOf) -> None:
    plan = plan_of(stack, True)
    providers = [r for r in plan.run.resources if r.type == "pulumi:providers:kubernetes"]
    assert len(providers) == 1
    for resource in plan.run.resources:
        if resource.custom and resource.type.startswith("kubernetes:"):
            # One explicit provider for every Kubernetes object, inherited through the components.
            assert resource.provider == providers[0].urn
            if resource.kind != "Namespace" and "slm-deploy:serving:ModelServer" in resource.urn:
                assert any(d.endswith("-namespace") for d in resource.dependencies)
        if resource.kind == "PersistentVolumeClaim":
            assert resource.protect is (stack != "dev")


def _program_with_secret() -> tuple[Callable[[], Any], dict[str, ModelServer]]:
    from infra.config.secrets import SecretValue

    config = validate_stack_config(
        {
            "environment": "dev",
            "secrets": {"hfToken": SecretValue(plaintext="hf_canary_value_123")},
            "models": [
                {
                    "name": "gated",
                    "engine": "vllm",
                    "modelId": "org/gated",
                    "gpu": {"count": 1},
                    "hfTokenSecret": "hfToken",
                }
            ],
        },
        "test",
    )
    servers: dict[str, ModelServer] = {}
    return (lambda: servers.update(deploy(config))), servers


@MODES
def test_hf_token_is_a_secret_reference(preview: bool) -> None:
    program, _ = _program_with_secret()
    run = run_program(program, "test", preview)
    secret = one(run.resources, "Secret", "gated-secrets-secret")
    assert secret.parent and secret.parent.endswith("ModelSecrets::gated-secrets")
    assert isinstance(secret.inputs["stringData"], Secret)
    container = pod_spec(one(run.resources, "Deployment", "gated-deployment"))["containers"][0]
    token_env = next(e for e in container["env"] if e["name"] == "HF_TOKEN")
    assert token_env == {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"key": "hfToken", "name": "gated-secrets"}}}
    assert "hf_canary_value_123" not in repr([r.inputs for r in run.resources])


def test_a_model_that_reads_no_secret_gets_no_secrets_component() -> None:
    # The reference stacks configure no Hugging Face token: nothing to own, so no empty component.
    config = validate_stack_config(
        {
            "environment": "dev",
            "models": [{"name": "open", "engine": "vllm", "modelId": "org/open", "gpu": {"count": 1}}],
        },
        "test",
    )
    servers: dict[str, ModelServer] = {}
    run = run_program(lambda: servers.update(deploy(config)), "test", True)
    assert servers["open"].secrets is None
    assert not [r for r in run.resources if r.type == "slm-deploy:secrets:ModelSecrets"]


def _is_known(output: pulumi.Output[Any]) -> bool:
    from pulumi.runtime.sync_await import _sync_await

    return bool(_sync_await(output.is_known()))


@MODES
def test_computed_outputs_are_unknown_only_in_preview(preview: bool) -> None:
    program, servers = _program_with_secret()
    known: dict[str, bool] = {}

    def observe() -> None:
        program()
        # Output futures resolve as the mock engine answers; read them before the run ends.
        known["status"] = _is_known(servers["gated"].deployment.status)
        known["name"] = _is_known(servers["gated"].deployment.metadata.name)
        known["id"] = _is_known(servers["gated"].deployment.id)

    run_program(observe, "test", preview)
    # Inputs are known in both modes; what only the provider computes is unknown in preview.
    assert known["name"] is True
    assert known["status"] is (not preview)
    assert known["id"] is True


def test_prod_vllm_flags_come_from_sizing(plan_of: PlanOf) -> None:
    from infra.sizing.served import size_for

    plan = plan_of("prod", True)
    for model in plan.config.models:
        assert model.sizing is not None and model.vllm is None
        sized = size_for(model, plan.config.gpu_vm_size(model))
        args = pod_spec(one(plan.run.resources, "Deployment", f"{model.name}-deployment"))["containers"][0]["args"]
        assert f"--max-model-len={sized.vllm_settings['max_model_len']}" in args
        assert f"--max-num-seqs={sized.vllm_settings['max_num_seqs']}" in args
        assert f"--tensor-parallel-size={sized.vllm_settings['tensor_parallel_size']}" in args
        assert sized.choice.vm_size == plan.config.gpu_vm_size(model)


def _tiny_server(overrides: dict[str, Any], preview: bool, labels: dict[str, str] | None = None) -> list[Any]:
    """The resources of one ModelServer built from its Args alone: a small Ollama model, no stack."""
    model = ModelConfig.model_validate({"name": "tiny", "engine": "ollama", "modelId": "smollm2:135m", **overrides})

    def program() -> None:
        ModelServer(
            "tiny",
            ModelServerArgs(
                model=model,
                engine=ollama_engine(model, EngineContext()),
                network=NetworkConfig(),
                monitoring_namespace="monitoring",
                secret_store=SecretStoreConfig(),
                labels=labels or {},
            ),
        )

    return run_program(program, "test", preview).resources


@MODES
def test_a_model_server_needs_only_its_args(preview: bool) -> None:
    """No stack: the component is built from a model, its engine and the few settings it reads."""
    resources = _tiny_server({}, preview, labels={"team": "ml"})
    deployment = one(resources, "Deployment", "tiny-deployment")
    assert deployment.inputs["metadata"]["labels"]["team"] == "ml"
    namespace = one(resources, "Namespace", "tiny-namespace")
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # No gateway peer was passed: no policy admits the entry point's proxies.
    assert not [r for r in of_kind(resources, "NetworkPolicy") if "gateway" in r.name]


@pytest.mark.parametrize(
    ("access_mode", "strategy"), [("ReadWriteOnce", "Recreate"), ("ReadWriteMany", "RollingUpdate")]
)
def test_a_single_node_cache_is_replaced_not_rolled(access_mode: str, strategy: str) -> None:
    """A surge pod on another node could never attach a ReadWriteOnce cache: that rollout would hang."""
    resources = _tiny_server({"cache": {"accessMode": access_mode}}, preview=False)
    deployment = one(resources, "Deployment", "tiny-deployment")
    assert deployment.inputs["spec"]["strategy"]["type"] == strategy


@pytest.mark.parametrize("stack", REFERENCE_STACKS)
def test_model_servers_reserve_their_disk_and_run_at_the_serving_priority(stack: str, plan_of: PlanOf) -> None:
    """ephemeral-storage = the disk-backed emptyDirs' size limits + the margin; tmpfs is memory, not disk."""
    plan = plan_of(stack, True)
    for prefix, _, _ in (revision for model in plan.config.models for revision in served_revisions(model)):
        spec = pod_spec(one(plan.run.resources, "Deployment", f"{prefix}-deployment"))
        disk = [
            v["emptyDir"]["sizeLimit"]
            for v in spec["volumes"]
            if "emptyDir" in v and v["emptyDir"].get("medium") != "Memory"
        ]
        expected = ephemeral_storage(disk)
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            resources = container["resources"]
            assert resources["requests"]["ephemeral-storage"] == expected, container["name"]
            assert resources["limits"]["ephemeral-storage"] == expected, container["name"]
        assert spec["priorityClassName"] == priority.SERVING.name


def test_the_disk_budget_adds_the_margin_in_whole_mebibytes() -> None:
    assert ephemeral_storage(["4Gi", "8Gi"]) == "12800Mi"
    assert ephemeral_storage([]) == EPHEMERAL_STORAGE_MARGIN
    assert ephemeral_storage(["1G"]) == "1466Mi"  # 953.67 MiB + 512 MiB, rounded up
