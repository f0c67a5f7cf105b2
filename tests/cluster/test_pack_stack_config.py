"""The pack keeps the stack config the engine sends in ``ConfigureStack`` (policies/lib/stack_config.py).

The offline half of what test_pulumi_engine.py shows under the real CLI: the servicer of pulumi-policy,
with the pack's patch applied as its ``__main__`` applies it, receives the request the CLI sends, and
the rules' reader then sees the stack's values, never its secret ones.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel
from pulumi_policy.policy import _PolicyAnalyzerServicer

from infra.policy.analyzer import load_pack
from policies.lib import stack_config


@pytest.fixture
def engine_config() -> Iterator[None]:
    yield
    stack_config.receive({}, [])  # what a test received stays in this test


def test_configure_stack_reaches_the_rules_without_secrets(engine_config: None) -> None:
    pack = load_pack()
    stack_config.keep_engine_config()
    stack_config.keep_engine_config()  # a second call wraps nothing twice
    servicer = _PolicyAnalyzerServicer(
        pack.PACK_NAME, pack.PACK_VERSION, list(pack.POLICIES), EnforcementLevel.ADVISORY
    )
    request = analyzer_pb2.AnalyzerStackConfigureRequest(
        stack="local",
        project="slm-deploy",
        config={
            "slm-deploy:environment": "dev",
            "slm-deploy:labels": '{"cost-center":"local"}',
            "slm-deploy:apiKey": "sk-not-for-reports",
        },
        config_secret_keys=["slm-deploy:apiKey"],
        tags={"owner": "platform"},
    )
    servicer.ConfigureStack(request, None)
    assert stack_config.value("environment") == "dev"
    assert stack_config.value("labels") == {"cost-center": "local"}
    assert stack_config.value("apiKey") is None
