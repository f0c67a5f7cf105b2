"""What the runtime suite expects of one model server, derived from the stack config.

The suite (``infra/verify/suite/test_runtime.py``) reads one :class:`Expectation` as JSON from the file
named by ``SLM_VERIFY_EXPECTATIONS``; the same file format drives a pod (``kubectl://``) and a local
process (``local://``), so the local stand-in used by the tests can be swapped for the real server.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from infra.config.model import ModelConfig
    from infra.config.stack import StackConfig

#: Environment variable naming the expectations file the suite reads.
EXPECTATIONS_ENV = "SLM_VERIFY_EXPECTATIONS"

ListenScope = Literal["namespace", "process"]


@dataclass(frozen=True)
class Expectation:
    """The runtime promises of one model server."""

    model: str
    #: Served model name (the OpenAI ``model`` field).
    api_model: str
    namespace: str
    deployment: str
    service: str
    container: str
    #: Process to inspect: 1 in a pod (the engine is the container's entrypoint), the server's pid locally.
    pid: int
    uid: int
    gid: int
    #: Ports that may listen (the API port first).
    ports: list[int]
    #: ``namespace``: every non-loopback listener in the pod's network namespace; ``process``: the
    #: sockets of ``pid`` only (a local process shares the machine's network namespace).
    listen_scope: ListenScope
    cache_path: str
    #: Paths (globs) below ``cache_path`` that must exist; empty = the cache must not be empty.
    model_files: list[str] = field(default_factory=list)
    read_only_root_filesystem: bool = True
    no_new_privileges: bool = True
    drop_all_capabilities: bool = True
    api_base_path: str = "/v1"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Expectation:
        return cls(**data)

    def write(self, path: Path) -> Path:
        path.write_text(self.to_json(), encoding="utf-8")
        return path


def load_expectation(path: Path) -> Expectation:
    return Expectation.from_dict(json.loads(path.read_text(encoding="utf-8")))


def _model_files(model: ModelConfig) -> list[str]:
    """Where each engine keeps the weights below its cache mount (or the weights image's mount)."""
    if model.weights.image_volume:
        return ["config.json"]  # the model folder slm-deploy pack-weights packed
    if model.engine == "vllm" and "/" in model.model_id and not model.model_id.startswith("/"):
        return [f"hf/hub/models--{model.model_id.replace('/', '--')}"]
    if model.engine == "ollama":
        return ["ollama/manifests"]
    return []


def expectation_for(model: ModelConfig, config: StackConfig) -> Expectation:
    """The in-pod expectations of ``model`` (UID from its hardening, ports and paths from its engine)."""
    from infra.engines import engine_for

    engine = engine_for(model, config)
    ports = [engine.port]
    if engine.metrics_port is not None and engine.metrics_port not in ports:
        ports.append(engine.metrics_port)
    hardening = model.hardening
    return Expectation(
        model=model.name,
        api_model=model.api_model_name,
        namespace=model.k8s_namespace,
        deployment=model.name,
        service=model.name,
        container=engine.container_name,
        pid=1,
        uid=hardening.run_as_user,
        gid=hardening.run_as_group,
        ports=ports,
        listen_scope="namespace",
        cache_path=engine.image_volumes[0].mount_path if engine.image_volumes else engine.cache_mount_path,
        model_files=_model_files(model),
        read_only_root_filesystem=hardening.read_only_root_filesystem,
        no_new_privileges=not hardening.allow_privilege_escalation,
        drop_all_capabilities=hardening.drop_all_capabilities,
        api_base_path=engine.api_base_path,
    )


def expectations_for(config: StackConfig) -> list[Expectation]:
    return [expectation_for(model, config) for model in config.models]
