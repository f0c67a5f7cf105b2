"""The chat UI (Open WebUI behind the entry point): off by default, hardened, its keys never rendered."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from infra.cli import app
from infra.components.chat_ui import _start_command
from infra.plan.crds import validate_custom_resource
from infra.plan.model import RecordedResource, Secret
from infra.plan.render import manifests
from infra.plan.schema import validate_manifests
from infra.plan.stack import StackPlan, plan_stack
from tests.chat_ui.chat_ui_cases import (
    CANARIES,
    CHAT_KEY,
    CHAT_UI,
    SESSION,
    TEST_DIGEST,
    stack_text,
    write_stack,
)
from tests.conftest import REFERENCE_STACKS
from tests.helpers import of_kind, one, pod_spec

PlanOf = Callable[[str, bool], StackPlan]
MODES = pytest.mark.parametrize("preview", [True, False], ids=["preview", "update"])
CHAT_NAMESPACE = "slm-chat"


def planned(stack_dir: Path, monkeypatch: pytest.MonkeyPatch, preview: bool, text: str | None = None) -> StackPlan:
    return plan_stack(write_stack(stack_dir, monkeypatch, text), stack_dir, preview=preview)


def in_namespace(resources: list[RecordedResource], namespace: str) -> list[RecordedResource]:
    return [r for r in resources if r.custom and r.inputs.get("metadata", {}).get("namespace") == namespace]


def spec(resource: RecordedResource) -> dict[str, Any]:
    value: dict[str, Any] = resource.inputs["spec"]
    return value


# --- off by default -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", REFERENCE_STACKS)
def test_off_by_default_nothing_is_created(stack: str, plan_of: PlanOf) -> None:
    plan = plan_of(stack, True)
    assert not plan.config.chat_ui.enabled
    assert [r for r in plan.run.resources if r.type == "slm-deploy:chat:ChatUi"] == []
    assert in_namespace(plan.run.resources, CHAT_NAMESPACE) == []
    assert [r for r in plan.run.resources if r.name.startswith("chat-ui")] == []
    for policy in of_kind(plan.run.resources, "SecurityPolicy"):
        # The API-key check still covers the whole Gateway: nothing changes for stacks without a UI.
        assert [ref.get("sectionName") for ref in spec(policy)["targetRefs"]] == [None]
    for gateway in of_kind(plan.run.resources, "Gateway"):
        assert [listener["name"] for listener in spec(gateway)["listeners"]] == ["https"]


# --- what the stack with a UI creates -------------------------------------------------------------------------------


@MODES
def test_ui_objects_live_in_their_namespace_under_the_component(
    stack_dir: Path, monkeypatch: pytest.MonkeyPatch, preview: bool
) -> None:
    run = planned(stack_dir, monkeypatch, preview).run
    (component,) = [r for r in run.resources if r.type == "slm-deploy:chat:ChatUi"]
    children = [r for r in run.resources if r.parent == component.urn]
    assert sorted(r.kind for r in children) == sorted(
        ["Namespace", "ServiceAccount", "Secret", "PersistentVolumeClaim", "Deployment", "Service"]
        + ["PodDisruptionBudget"]
        + ["NetworkPolicy"] * 4
    )
    assert all(r.name.startswith("chat-ui-") for r in children)
    namespace = one(run.resources, "Namespace", "chat-ui-namespace")
    labels = namespace.inputs["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


@MODES
def test_the_pod_is_hardened_and_writes_only_to_its_volumes(
    stack_dir: Path, monkeypatch: pytest.MonkeyPatch, preview: bool
) -> None:
    run = planned(stack_dir, monkeypatch, preview).run
    deployment = one(run.resources, "Deployment", "chat-ui-deployment")
    pod = pod_spec(deployment)
    assert spec(deployment)["replicas"] == 1
    assert spec(deployment)["strategy"] == {"type": "Recreate"}
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"] + pod["initContainers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["runAsNonRoot"] is True and context["runAsUser"] >= 10000
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert container["image"] == f"ghcr.io/open-webui/open-webui:0.7.2@{TEST_DIGEST}"
    (server,) = pod["containers"]
    mounts = {m["mountPath"]: m["name"] for m in server["volumeMounts"]}
    assert mounts == {
        "/app/backend/data": "data",
        "/tmp": "tmp",
        "/var/lib/open-webui/static": "static",
        "/etc/slm-chat/secrets": "secrets",
        "/etc/slm-chat/ca": "ca",
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "chat-ui-data"}
    assert volumes["secrets"]["secret"]["secretName"] == "chat-ui-secrets"
    assert volumes["ca"]["configMap"]["name"] == "corp-ca"
    env = {e["name"]: e for e in server["env"]}
    # Secrets come from mounted files only: no variable carries one, by value or by reference.
    assert all(set(e) == {"name", "value"} for e in env.values())
    assert env["OPENAI_API_BASE_URLS"]["value"] == (
        "https://llm.example.com/models/qwen3/v1;https://llm.example.com/models/phi/v1"
    )
    assert env["STATIC_DIR"]["value"] == "/var/lib/open-webui/static"
    assert env["ENABLE_OLLAMA_API"]["value"] == "false"
    assert env["ENABLE_PERSISTENT_CONFIG"]["value"] == "false"
    assert env["WEBUI_URL"]["value"] == "https://chat.example.com"
    assert env["SSL_CERT_FILE"]["value"] == "/etc/slm-chat/ca/ca.crt"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert server[probe]["httpGet"] == {"path": "/health", "port": "http"}
    (seed,) = pod["initContainers"]
    assert seed["command"][-1] == (
        "[ -e /seed/.slm-deploy-seeded ] || { cp -R /app/backend/data/. /seed/ && touch /seed/.slm-deploy-seeded; }"
    )
    assert [m["mountPath"] for m in seed["volumeMounts"]] == ["/seed"]


@MODES
def test_network_policies_admit_only_the_gateway_and_reach_only_it(
    stack_dir: Path, monkeypatch: pytest.MonkeyPatch, preview: bool
) -> None:
    run = planned(stack_dir, monkeypatch, preview).run
    policies = {
        r.inputs["metadata"]["name"]: spec(r)
        for r in of_kind(in_namespace(run.resources, CHAT_NAMESPACE), "NetworkPolicy")
    }
    assert sorted(policies) == ["allow-dns-egress", "allow-entry-point-ingress", "allow-gateway-egress", "default-deny"]
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    proxies = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "slm-gateway"}},
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/name": "envoy",
                "app.kubernetes.io/component": "proxy",
                "app.kubernetes.io/managed-by": "envoy-gateway",
                "gateway.envoyproxy.io/owning-gateway-name": "slm-deploy",
                "gateway.envoyproxy.io/owning-gateway-namespace": "slm-gateway",
            }
        },
    }
    (ingress,) = policies["allow-entry-point-ingress"]["ingress"]
    assert ingress == {"from": [proxies], "ports": [{"protocol": "TCP", "port": 8080}]}
    (egress,) = policies["allow-gateway-egress"]["egress"]
    # Envoy Gateway's proxies listen on 10443 for the listeners' port 443.
    assert egress == {"to": [proxies], "ports": [{"protocol": "TCP", "port": 10443}]}
    (dns,) = policies["allow-dns-egress"]["egress"]
    assert [p["port"] for p in dns["ports"]] == [53, 53]
    # The models accept only the gateway (the UI never calls them directly): their policies are unchanged.
    model_ingress = [
        p for p in of_kind(in_namespace(run.resources, "slm-qwen3"), "NetworkPolicy") if "ingress" in spec(p)
    ]
    peers = [peer for p in model_ingress for rule in spec(p)["ingress"] for peer in rule["from"]]
    assert all(
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] != CHAT_NAMESPACE for peer in peers
    )


@MODES
def test_the_entry_point_serves_the_ui_on_its_own_listener_without_the_api_key_check(
    stack_dir: Path, monkeypatch: pytest.MonkeyPatch, preview: bool
) -> None:
    run = planned(stack_dir, monkeypatch, preview).run
    gateway = one(run.resources, "Gateway", "entry-point-gateway")
    api, chat = spec(gateway)["listeners"]
    assert (api["name"], api["hostname"]) == ("https", "llm.example.com")
    assert (chat["name"], chat["hostname"], chat["port"], chat["protocol"]) == (
        "chat",
        "chat.example.com",
        443,
        "HTTPS",
    )
    assert chat["tls"]["certificateRefs"] == [{"group": "", "kind": "Secret", "name": "slm-chat-ui-tls"}]
    assert chat["allowedRoutes"]["namespaces"]["selector"]["matchExpressions"][0]["values"] == [CHAT_NAMESPACE]
    assert CHAT_NAMESPACE not in api["allowedRoutes"]["namespaces"]["selector"]["matchExpressions"][0]["values"]
    policy = one(run.resources, "SecurityPolicy", "entry-point-api-key-auth")
    assert spec(policy)["targetRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "slm-deploy", "sectionName": "https"}
    ]
    certificate = one(run.resources, "Certificate", "entry-point-ui-certificate")
    assert spec(certificate)["dnsNames"] == ["chat.example.com"]
    assert spec(certificate)["issuerRef"]["name"] == "corp-internal-ca"  # the entry point's issuer
    route = one(run.resources, "HTTPRoute", "entry-point-route-ui")
    assert route.inputs["metadata"]["namespace"] == CHAT_NAMESPACE
    assert spec(route)["parentRefs"][0]["sectionName"] == "chat"
    assert spec(route)["hostnames"] == ["chat.example.com"]
    assert spec(route)["rules"][0]["backendRefs"] == [{"group": "", "kind": "Service", "name": "chat-ui", "port": 8080}]


def test_an_existing_tls_secret_replaces_the_ui_certificate(stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chat = CHAT_UI.format(digest=TEST_DIGEST) + "    tls: {secretName: chat-tls}\n"
    run = planned(stack_dir, monkeypatch, True, stack_text(chat)).run
    assert [r.name for r in of_kind(run.resources, "Certificate")] == ["entry-point-certificate"]
    chat_listener = spec(one(run.resources, "Gateway", "entry-point-gateway"))["listeners"][1]
    assert chat_listener["tls"]["certificateRefs"] == [{"group": "", "kind": "Secret", "name": "chat-tls"}]


def test_the_data_volume_is_protected_in_prod_and_not_in_dev(stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prod = planned(stack_dir, monkeypatch, True)
    assert one(prod.run.resources, "PersistentVolumeClaim", "chat-ui-data").protect is True
    dev = planned(stack_dir, monkeypatch, True, stack_text().replace("environment: prod", "environment: dev"))
    assert one(dev.run.resources, "PersistentVolumeClaim", "chat-ui-data").protect is False


def test_the_ui_key_is_its_own_client_key_and_stays_secret(stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = planned(stack_dir, monkeypatch, False).run
    secret = one(run.resources, "Secret", "chat-ui-secret")
    data = secret.inputs["stringData"]
    assert isinstance(data, Secret)
    # Open WebUI pairs keys with base URLs: the UI's key once per model, and the session key.
    assert data.value == {"openai-api-keys": f"{CHAT_KEY};{CHAT_KEY}", "webui-secret-key": SESSION}
    for resource in run.resources:
        if resource is secret or resource.type == "kubernetes:core/v1:Secret":
            continue
        text = json.dumps(resource.inputs, default=str)
        assert not any(canary in text for canary in CANARIES), resource.name


def test_no_secret_appears_in_any_output_or_file(stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = write_stack(stack_dir, monkeypatch)
    root = ["--stack", name, "--root", str(stack_dir)]
    out = stack_dir / "out"
    runner = CliRunner()
    printed = []
    for command in (
        ["validate", *root],
        ["plan", *root, "--format", "json", "--mode", "update"],
        ["render", *root, "--out", str(out / "render")],
        ["check", *root, "--format", "json", "--output", str(out / "report.json")],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, (command, result.output)
        printed.append(result.output)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "secret--chat-ui-secrets.yaml" for p in files)
    leaks = [p for p in files if any(c in p.read_text(encoding="utf-8") for c in CANARIES)]
    assert leaks == []
    assert not any(c in text for c in CANARIES for text in printed)


# --- strict schemas, custom resources, the policy pack ---------------------------------------------------------------


def test_every_object_passes_strict_schema_and_crd_validation(stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = planned(stack_dir, monkeypatch, False)
    items = manifests(plan.run.resources)
    results = validate_manifests(items, plan.config.kubernetes_version)
    assert [(r.path, r.status, r.message) for r in results if r.status != "valid"] == []
    chat_items = [m for m in items if m.path.startswith(f"{CHAT_NAMESPACE}/")]
    assert len(chat_items) == 11
    for item in items:
        result = validate_custom_resource(item.document)
        assert result is None or result == ("valid", ""), (item.path, result)


def test_the_policy_pack_passes_with_the_single_replica_waived(
    stack_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = write_stack(stack_dir, monkeypatch)
    result = CliRunner().invoke(app, ["check", "--stack", name, "--root", str(stack_dir), "--format", "json"])
    report = json.loads(result.stdout)
    violations = [r for r in report["results"] if r["status"] == "violation"]
    assert result.exit_code == 0, violations
    assert report["summary"]["mandatoryViolations"] == report["summary"]["advisoryViolations"] == 0
    waived = [(r["policyName"], r["resourceName"]) for r in report["results"] if r["status"] == "waived"]
    assert waived == [("min-replicas", "chat-ui-deployment")]
    passed = {(r["policyName"], r["resourceName"]) for r in report["results"] if r["status"] == "pass"}
    for rule in ("read-only-root-filesystem", "run-as-non-root", "drop-all-capabilities", "serving-probes"):
        assert (rule, "chat-ui-deployment") in passed
    assert ("protect-stateful-resources", "chat-ui-data") in passed


# --- config errors ------------------------------------------------------------------------------------------------

ERRORS = {
    "needs-entry-point": (
        stack_text(entry_point=""),
        "slm-deploy:chatUi.enabled: the chat UI is served behind the entry point",
    ),
    "own-host-name": (
        stack_text(CHAT_UI.format(digest=TEST_DIGEST).replace("chat.example.com", "llm.example.com")),
        "slm-deploy:chatUi.hostname: 'llm.example.com' is the entry point's API host",
    ),
    "unknown-client": (
        stack_text(CHAT_UI.format(digest=TEST_DIGEST).replace("apiKeyClient: chat-ui", "apiKeyClient: browser")),
        "slm-deploy:chatUi.apiKeyClient: 'browser' is not a client in the secret 'gatewayKeys'",
    ),
    "no-key": (
        stack_text(CHAT_UI.format(digest=TEST_DIGEST).replace("    apiKeyClient: chat-ui\n", "")),
        "slm-deploy:chatUi.apiKeyClient: the entry point checks API keys: give the UI its own",
    ),
    "missing-session-secret": (
        stack_text(CHAT_UI.format(digest=TEST_DIGEST).replace("sessionSecret: chatSession", "sessionSecret: nope")),
        "slm-deploy:chatUi.sessionSecret: names secret 'nope', which is not under secrets",
    ),
    "model-namespace": (
        stack_text(CHAT_UI.format(digest=TEST_DIGEST) + "    namespace: slm-qwen3\n"),
        "slm-deploy:models[0].name: the namespace of model 'qwen3' would be Namespace 'slm-qwen3', which is "
        "already the chat UI's namespace (slm-deploy:chatUi.namespace)",
    ),
    "platform-namespace": (
        stack_text(CHAT_UI.format(digest=TEST_DIGEST) + "    namespace: monitoring\n"),
        "slm-deploy:chatUi.namespace: the chat UI's namespace would be Namespace 'monitoring', which is already "
        "the monitoring namespace",
    ),
    "unrouted-model": (
        stack_text(CHAT_UI.format(digest=TEST_DIGEST) + "    models: [qwen3, llama]\n"),
        "slm-deploy:chatUi.models[1]: names model 'llama', which the entry point does not route",
    ),
    "bad-host": (
        stack_text(CHAT_UI.format(digest=TEST_DIGEST).replace("chat.example.com", "https://chat")),
        "slm-deploy:chatUi.hostname: 'https://chat' is not a fully qualified host name",
    ),
    "no-issuer-for-the-ui": (
        stack_text().replace(
            "      issuerRef: {name: corp-internal-ca, kind: ClusterIssuer}", "      secretName: llm-tls"
        ),
        "slm-deploy:chatUi.tls: the entry point's certificate is an existing secret",
    ),
    "unknown-key": (
        stack_text(CHAT_UI.format(digest=TEST_DIGEST) + "    replicas: 2\n"),
        "slm-deploy:chatUi.replicas: unknown key",
    ),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_bad_chat_config_gives_one_line_and_exit_2(case: str, stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text, expected = ERRORS[case]
    name = write_stack(stack_dir, monkeypatch, text)
    result = CliRunner().invoke(app, ["validate", "--stack", name, "--root", str(stack_dir)])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert f"Pulumi.{name}.yaml: " in line
    assert expected in line
    assert "Traceback" not in result.output
    assert not any(canary in result.output for canary in CANARIES)


def test_a_short_session_secret_is_refused_without_quoting_it(stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = write_stack(stack_dir, monkeypatch)
    short = "short-session-canary"
    secrets = {
        "gatewayKeys": json.dumps({"team-a": "team-a-key-0123456789ab", "chat-ui": CHAT_KEY}),
        "chatSession": short,
    }
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"slm-deploy:secrets": json.dumps(secrets)}))
    result = CliRunner().invoke(app, ["validate", "--stack", name, "--root", str(stack_dir)])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "slm-deploy:secrets.chatSession: must be at least 32 characters" in line
    assert short not in result.output


# --- the start command --------------------------------------------------------------------------------------------


def test_the_start_command_reads_secret_files_and_refuses_an_empty_one(tmp_path: Path) -> None:
    script = _start_command(with_api_key=True)[2]
    assert "$(" not in script  # the kubelet would expand it
    folder = tmp_path / "secrets"
    folder.mkdir()
    # Secret files end without a newline, as Kubernetes writes string data.
    (folder / "webui-secret-key").write_text(SESSION)
    (folder / "openai-api-keys").write_text(f"{CHAT_KEY};{CHAT_KEY}")
    probe = script.replace("/etc/slm-chat/secrets", str(folder)).replace(
        script.splitlines()[-1], 'printf "%s|%s" "$WEBUI_SECRET_KEY" "$OPENAI_API_KEYS"'
    )
    done = subprocess.run(["/bin/sh", "-c", probe], capture_output=True, text=True, check=False, timeout=10)
    assert (done.returncode, done.stdout) == (0, f"{SESSION}|{CHAT_KEY};{CHAT_KEY}")
    (folder / "webui-secret-key").write_text("")
    done = subprocess.run(["/bin/sh", "-c", probe], capture_output=True, text=True, check=False, timeout=10)
    assert done.returncode != 0
