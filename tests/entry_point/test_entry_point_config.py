"""entryPoint config: every invalid combination is refused with a specific message at a known key path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from infra.config.base import KeyPathError
from infra.config.entry_point import EntryPointConfig, check_entry_point, parse_api_keys
from infra.config.loader import validate_stack_config
from infra.config.secrets import SecretValue
from infra.config.stack import StackConfig

CANARY = "canary-api-key-5f2b9c71d0e84a"
GOOD: dict[str, Any] = {
    "enabled": True,
    "hostname": "llm.example.com",
    "tls": {"issuerRef": {"name": "letsencrypt"}},
}


def first_error(data: dict[str, Any]) -> tuple[tuple[str | int, ...], str]:
    """Location and message of the first validation error (value errors as the loader prints them)."""
    with pytest.raises(ValidationError) as caught:
        EntryPointConfig.model_validate(data)
    error = caught.value.errors(include_url=False)[0]
    message = str((error.get("ctx") or {}).get("error", error["msg"]))
    return tuple(error["loc"]), message


def stack(environment: str = "dev", secrets: dict[str, SecretValue] | None = None) -> StackConfig:
    return validate_stack_config(
        {
            "environment": environment,
            "secrets": secrets or {},
            "models": [
                {
                    "name": "phi4-mini",
                    "engine": "vllm",
                    "modelId": "microsoft/Phi-4-mini-instruct",
                    "gpu": {"count": 1},
                },
                {"name": "qwen3", "engine": "vllm", "modelId": "Qwen/Qwen3-8B", "gpu": {"count": 1}},
            ],
        },
        "test",
    )


def keys_secret(value: object = None) -> SecretValue:
    return SecretValue(plaintext=json.dumps(value if value is not None else {"team-a": CANARY}))


def test_defaults_are_off_internal_and_pinned() -> None:
    config = EntryPointConfig()
    assert config.enabled is False
    assert config.exposure == "internal"
    assert config.namespace == "slm-gateway"
    assert config.controller_version == "v1.9.3"
    assert config.proxy_namespace == "slm-gateway"
    check_entry_point(config, stack("prod"))  # disabled: nothing to check


def test_a_complete_config_is_accepted_with_camel_case_keys() -> None:
    config = EntryPointConfig.model_validate(
        {**GOOD, "apiKeys": "gatewayKeys", "gatewayClassName": "eg", "installController": True, "models": ["qwen3"]}
    )
    assert config.api_keys == "gatewayKeys"
    assert config.exposes("qwen3") and not config.exposes("phi4-mini")
    check_entry_point(config, stack("prod", {"gatewayKeys": keys_secret()}))


@pytest.mark.parametrize(
    ("data", "where", "message"),
    [
        (
            {"enabled": True, "tls": GOOD["tls"]},
            (),
            "enabled is true but hostname is not set",
        ),
        (
            {"enabled": True, "hostname": "llm.example.com"},
            (),
            "enabled is true but tls is not set: TLS is required",
        ),
        (
            {**GOOD, "tls": {"issuerRef": {"name": "le"}, "secretName": "llm-tls"}},
            ("tls",),
            "give either issuerRef (cert-manager issues the certificate) or secretName",
        ),
        (
            {**GOOD, "tls": {}},
            ("tls",),
            "TLS is required: set issuerRef",
        ),
        (
            {**GOOD, "hostname": "https://llm.example.com"},
            ("hostname",),
            "is not a fully qualified host name",
        ),
        (
            {**GOOD, "hostname": "*.example.com"},
            ("hostname",),
            "no wildcard",
        ),
        (
            {**GOOD, "exposure": "open"},
            ("exposure",),
            "Input should be 'cluster', 'internal' or 'public'",
        ),
        (
            {**GOOD, "tls": {"issuerRef": {"name": "le", "kind": "Vault"}}},
            ("tls", "issuerRef", "kind"),
            "Input should be 'Issuer' or 'ClusterIssuer'",
        ),
        (
            {**GOOD, "requestTimeout": "5 minutes"},
            ("requestTimeout",),
            "is not a Gateway API duration",
        ),
        (
            {**GOOD, "controllerVersion": "latest"},
            ("controllerVersion",),
            "is not a pinned Envoy Gateway release",
        ),
        (
            {**GOOD, "installController": True, "proxyPlacement": "controller-namespace"},
            (),
            "proxyPlacement must be 'gateway-namespace'",
        ),
        (
            {**GOOD, "tlss": {}},
            ("tlss",),
            "Extra inputs are not permitted",
        ),
    ],
    ids=[
        "enabled-without-hostname",
        "enabled-without-tls",
        "both-tls-sources",
        "no-tls-source",
        "hostname-with-scheme",
        "wildcard-hostname",
        "unknown-exposure",
        "unknown-issuer-kind",
        "bad-timeout",
        "unpinned-controller",
        "controller-with-controller-namespace-proxies",
        "misspelled-key",
    ],
)
def test_invalid_config_is_refused(data: dict[str, Any], where: tuple[str, ...], message: str) -> None:
    loc, text = first_error(data)
    assert loc == where
    assert message in text


@pytest.mark.parametrize(
    ("environment", "extra", "secrets", "where", "message"),
    [
        (
            "prod",
            {"exposure": "public"},
            {},
            ("entryPoint", "exposure"),
            "public exposure in prod needs TLS and API keys",
        ),
        (
            "dev",
            {"apiKeys": "missing"},
            {"other": keys_secret()},
            ("entryPoint", "apiKeys"),
            "names secret 'missing', which is not under secrets (known: other)",
        ),
        (
            "dev",
            {"models": ["phi4-mini", "llama"]},
            {},
            ("entryPoint", "models", 1),
            "names model 'llama', which is not under models (known: phi4-mini, qwen3)",
        ),
        (
            "dev",
            {"namespace": "slm-qwen3"},
            {},
            ("entryPoint", "namespace"),
            "is model 'qwen3''s namespace",
        ),
        (
            "dev",
            {"apiKeys": "keys"},
            {"keys": SecretValue(plaintext=CANARY)},
            ("secrets", "keys"),
            "is not JSON: give the API keys as a JSON object of client name to key",
        ),
        (
            "dev",
            {"apiKeys": "keys"},
            {"keys": keys_secret({"team-a": "short"})},
            ("secrets", "keys"),
            "the key of the 1st client must be a string of at least 16 characters",
        ),
    ],
    ids=["public-prod-without-keys", "unknown-secret", "unknown-model", "model-namespace", "not-json", "short-key"],
)
def test_cross_field_errors_name_the_key_path(
    environment: str, extra: dict[str, Any], secrets: dict[str, SecretValue], where: tuple[Any, ...], message: str
) -> None:
    config = EntryPointConfig.model_validate({**GOOD, **extra})
    with pytest.raises(KeyPathError) as caught:
        check_entry_point(config, stack(environment, secrets))
    assert caught.value.path == where
    assert message in caught.value.message
    assert CANARY not in caught.value.message


def test_public_exposure_is_allowed_with_keys_in_prod_and_without_them_elsewhere() -> None:
    public = EntryPointConfig.model_validate({**GOOD, "exposure": "public"})
    check_entry_point(public, stack("staging"))
    with_keys = EntryPointConfig.model_validate({**GOOD, "exposure": "public", "apiKeys": "keys"})
    check_entry_point(with_keys, stack("prod", {"keys": keys_secret()}))


def test_encrypted_keys_are_checked_only_for_presence() -> None:
    config = EntryPointConfig.model_validate({**GOOD, "apiKeys": "keys"})
    check_entry_point(config, stack("prod", {"keys": SecretValue(ciphertext="v1:AAAA")}))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[]", "must be a non-empty JSON object"),
        ("{}", "must be a non-empty JSON object"),
        (json.dumps({"team a": CANARY}), "the 1st client name may use only"),
        (json.dumps({"a": CANARY, "b": CANARY}), "the 1st and 2nd clients have the same key"),
        (json.dumps({"a": 12345678901234567}), "the key of the 1st client must be a string"),
    ],
)
def test_api_key_format_errors_never_quote_a_key(value: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_api_keys(value)
    assert message in str(caught.value)
    assert CANARY not in str(caught.value)


def test_api_keys_parse_to_client_names() -> None:
    assert parse_api_keys(json.dumps({"team-a": CANARY, "ci.bot": CANARY[::-1]})) == {
        "team-a": CANARY,
        "ci.bot": CANARY[::-1],
    }
