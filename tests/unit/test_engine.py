"""The recording mock engine: options, unknowns in preview, secrets kept as markers."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pytest
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from infra.plan.engine import run_program
from infra.plan.model import UNKNOWN, Secret


def _program() -> None:
    first = k8s.core.v1.ConfigMap("first", metadata=ObjectMetaArgs(name="first", namespace="ns"), data={"a": "1"})
    k8s.core.v1.ConfigMap(
        "second",
        metadata=ObjectMetaArgs(name="second", namespace="ns"),
        # Only the provider knows the uid: unknown during preview.
        data={"uid": first.metadata.uid, "token": pulumi.Output.secret("s3cr3t")},
        opts=pulumi.ResourceOptions(depends_on=[first], protect=True),
    )


@pytest.mark.parametrize("preview", [True, False], ids=["preview", "update"])
def test_unknowns_secrets_and_options_are_recorded(preview: bool) -> None:
    run = run_program(_program, "test", preview)
    by_name = {r.name: r for r in run.resources}
    second = by_name["second"]
    assert second.protect is True
    assert second.dependencies == (by_name["first"].urn,)
    # A secret anywhere in a map makes the whole map secret, as the engine does.
    data = second.inputs["data"]
    assert isinstance(data, Secret)
    if preview:
        assert data.value["uid"] == UNKNOWN
    else:
        assert data.value["uid"] == "placeholder-uid-first"
    assert data.value["token"] == "s3cr3t"
    assert "s3cr3t" not in repr(second.inputs)
    assert second.urn == "urn:pulumi:test::slm-deploy::kubernetes:core/v1:ConfigMap::second"


def test_runs_after_asyncio_run_left_no_current_loop() -> None:
    import asyncio

    async def nothing() -> None:
        return None

    # asyncio.run closes its loop and leaves the thread without a current one (as httpx-based code does).
    asyncio.run(nothing())
    run = run_program(_program, "test", True)
    assert {r.name for r in run.resources} == {"first", "second"}


def test_a_run_closes_the_loop_it_ran_on() -> None:
    import asyncio

    run_program(_program, "test", True)
    # A loop left open is finalised at interpreter exit, sometimes after its self-pipe, and then prints
    # "Exception ignored in BaseEventLoop.__del__" under a large plan's output.
    assert asyncio.get_event_loop_policy().get_event_loop().is_closed()
