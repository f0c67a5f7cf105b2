"""Run the real program in-process under the Pulumi SDK's mock engine and record every resource.

The SDK's ``MockMonitor`` receives each ``RegisterResource`` request exactly as the engine would;
:class:`RecordingMonitor` keeps the parts a plan needs (options included), and :class:`PlanMocks`
answers like a provider would: in preview, only inputs are known; in update, computed fields get
placeholder values, each listed in ``placeholder_outputs`` so reports can say so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks

from infra.plan import placeholders
from infra.plan.model import RecordedResource
from infra.plan.wire import UNKNOWN_SENTINEL, from_wire

#: The Pulumi SDK's runtime settings are process-wide: one plan at a time.
_LOCK = threading.Lock()


def _placeholder(type_: str, name: str, key: str) -> str:
    if key.endswith("Id") and type_.startswith("azure-native:"):
        return placeholders.PLACEHOLDER_UUID
    return f"placeholder-{key}-{name}"


def _computed_outputs(
    type_: str, name: str, inputs: dict[str, Any], preview: bool
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Values a provider computes on create: unknown in preview, clearly marked placeholders in update."""
    if type_.startswith("kubernetes:") and isinstance(inputs.get("metadata"), dict):
        metadata = dict(inputs["metadata"])
        metadata.setdefault("name", name)
        metadata["uid"] = UNKNOWN_SENTINEL if preview else f"placeholder-uid-{name}"
        status: Any = UNKNOWN_SENTINEL if preview else {}
        return {**inputs, "metadata": metadata, "status": status}, ("metadata.uid", "status")
    computed = placeholders.COMPUTED_OUTPUTS.get(type_, ())
    outputs = {**inputs, **{k: UNKNOWN_SENTINEL if preview else _placeholder(type_, name, k) for k in computed}}
    return outputs, computed


class PlanMocks(pulumi_mocks.Mocks):
    def __init__(self, preview: bool) -> None:
        self.preview = preview
        self.placeholders: dict[str, tuple[str, ...]] = {}
        self.inputs: dict[tuple[str, str], dict[str, Any]] = {}
        #: Every invoke the program made, with the placeholder answer it got.
        self.invokes: list[tuple[str, dict[str, Any]]] = []

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        # The monitor has already decoded the request's inputs (secrets still marked); keep them.
        self.inputs[(args.typ, args.name)] = args.inputs
        outputs, computed = _computed_outputs(args.typ, args.name, args.inputs, self.preview)
        key = placeholders.NAME_INPUT.get(args.typ)
        if key and key in args.inputs and not self.preview:
            # As the provider does after create; in preview a new resource's name output stays unknown.
            outputs = {**outputs, "name": args.inputs[key]}
        identity = outputs.get("identity")
        if isinstance(identity, dict) and isinstance(identity.get("userAssignedIdentities"), list):
            # Azure takes a list of identity ids and answers a map keyed by id (the SDK's output type).
            outputs = {
                **outputs,
                "identity": {**identity, "userAssignedIdentities": {i: {} for i in identity["userAssignedIdentities"]}},
            }
        if not self.preview:
            self.placeholders[args.name] = computed
        return f"placeholder-id-{args.name}", outputs

    def call(self, args: pulumi_mocks.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        # A plain dict: the SDK's mock monitor reads a tuple as (result, failures) and iterates failures.
        if args.token == placeholders.GET_RESOURCE_GROUP:
            name = args.args.get("resourceGroupName")
            answer: dict[str, Any] = {
                "name": name,
                "location": "placeholder-location",
                "id": f"/subscriptions/{placeholders.PLACEHOLDER_UUID}/resourceGroups/{name}",
            }
        else:
            answer = dict(placeholders.INVOKE_ANSWERS.get(args.token, {}))
        self.invokes.append((args.token, answer))
        return answer


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, keeping every registration request's type, name, inputs and options."""

    def __init__(self, mocks: PlanMocks, project: str, stack: str) -> None:
        super().__init__(mocks)
        self._project = project
        self._stack = stack
        self.plan_mocks = mocks
        self.requests: list[tuple[str, Any]] = []

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # As the engine does: the type chain of component parents, without the root stack's type.
        qualified = type_
        if parent:
            parent_type = parent.split("::")[2]
            if parent_type != "pulumi:pulumi:Stack":
                qualified = f"{parent_type}${type_}"
        return f"urn:pulumi:{self._stack}::{self._project}::{qualified}::{name}"

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.requests.append((response.urn, request))
        return response

    def records(self) -> list[RecordedResource]:
        recorded = []
        for urn, request in self.requests:
            decoded = self.plan_mocks.inputs.get((request.type, request.name))
            inputs = from_wire(decoded if decoded is not None else json_format.MessageToDict(request.object))
            recorded.append(
                RecordedResource(
                    urn=urn,
                    type=request.type,
                    name=request.name,
                    custom=bool(request.custom),
                    inputs=inputs,
                    parent=request.parent or None,
                    # A provider reference is "<urn>::<id>"; keep the URN.
                    provider=request.provider.rsplit("::", 1)[0] if request.provider else None,
                    protect=bool(request.protect),
                    dependencies=tuple(sorted(request.dependencies)),
                    ignore_changes=tuple(request.ignoreChanges),
                    placeholder_outputs=self.plan_mocks.placeholders.get(request.name, ()),
                )
            )
        return recorded


@dataclass(frozen=True)
class PlanRun:
    stack: str
    preview: bool
    resources: list[RecordedResource]
    #: (token, placeholder answer) of every invoke, in call order.
    invokes: list[tuple[str, dict[str, Any]]]


@contextmanager
def _without_source_positions() -> Iterator[None]:
    """Registrations carry no call stack while the mock engine runs the program.

    For each resource the SDK walks the Python stack (``traceback.extract_stack``, source lines included) so that
    the real engine can point diagnostics at the declaring line (``pulumi/runtime/resource.py``,
    ``_get_stack_trace``, SDK 3.27x). The mock engine and this recording ignore it, and it was a tenth of a
    prod plan. Under the Pulumi CLI the program never runs here, so positions are unchanged there.
    """
    from pulumi.runtime import resource as sdk_resource
    from pulumi.runtime.proto import source_pb2

    original = getattr(sdk_resource, "_get_stack_trace", None)
    if original is None:  # another SDK: leave it as it is
        yield
        return
    sdk_resource._get_stack_trace = source_pb2.StackTrace
    try:
        yield
    finally:
        sdk_resource._get_stack_trace = original


def run_program(program: Callable[[], Any], stack: str, preview: bool, project: str = "slm-deploy") -> PlanRun:
    """Run ``program`` (which declares resources) to completion under the mock engine."""
    import asyncio

    from pulumi.runtime import settings as pulumi_settings
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    with _LOCK:
        # The SDK creates its futures on the thread's current loop. Each run gets its own, closed at the
        # end: a loop left for interpreter shutdown can be finalised after its self-pipe, which prints
        # "Exception ignored in BaseEventLoop.__del__" on a large stack.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            mocks = PlanMocks(preview=preview)
            monitor = RecordingMonitor(mocks, project, stack)
            # A fresh root stack for every run: set_mocks creates one when none is registered.
            pulumi_settings.ROOT.set(None)
            pulumi_mocks.set_mocks(mocks, project=project, stack=stack, preview=preview, monitor=monitor)
            with _without_source_positions():
                _sync_await(run_pulumi_func(program))
            return PlanRun(stack=stack, preview=preview, resources=monitor.records(), invokes=list(mocks.invokes))
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
