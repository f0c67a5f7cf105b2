"""In aks mode, a model is sized against its pool's VM: too big a model is a config error naming both."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config.loader import StackConfigError, validate_stack_config


def stack(model: dict[str, Any]) -> dict[str, Any]:
    return {
        "environment": "staging",
        "kubernetesVersion": "1.31",
        "cluster": {
            "mode": "aks",
            "name": "aks-slm",
            "resourceGroup": "rg-slm",
            "location": "westeurope",
            "kubernetesVersion": "1.31",
            "apiServer": {"authorizedIpRanges": ["203.0.113.0/24"]},
            "adminGroupObjectIds": ["11111111-2222-3333-4444-555555555555"],
            "gpuPools": [{"name": "t4", "vmSize": "Standard_NC4as_T4_v3", "minCount": 0, "maxCount": 2}],
        },
        "models": [model],
    }


def test_a_14b_model_in_bf16_does_not_fit_a_t4_pool() -> None:
    model = {"name": "big", "engine": "vllm", "catalog": "qwen3-14b", "gpu": {"count": 1, "pool": "t4"}, "sizing": {}}
    with pytest.raises(StackConfigError) as error:
        validate_stack_config(stack(model), "stacks/Pulumi.staging.yaml")
    message = str(error.value)
    assert "slm-deploy:models[0].gpu.pool: pool 't4'" in message
    assert "needs 47." in message and "Standard_NC4as_T4_v3 offers 14.4 GB per GPU" in message


def test_more_gpus_than_the_pool_vm_has() -> None:
    model = {"name": "wide", "engine": "vllm", "modelId": "org/m", "gpu": {"count": 2, "pool": "t4"}}
    with pytest.raises(StackConfigError, match=r"models\[0\]\.gpu\.count: model 'wide' asks for 2 GPUs per replica"):
        validate_stack_config(stack(model), "stacks/Pulumi.staging.yaml")


def test_a_small_model_fits_and_is_sized_for_the_t4() -> None:
    model = {
        "name": "small",
        "engine": "vllm",
        "catalog": "qwen3-1.7b",
        "gpu": {"count": 1, "pool": "t4"},
        "sizing": {},
    }
    config = validate_stack_config(stack(model), "stacks/Pulumi.staging.yaml")
    assert config.gpu_vm_size(config.models[0]) == "Standard_NC4as_T4_v3"
