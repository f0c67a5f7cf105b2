"""Ollama (``ollama/ollama``): CPU or GPU, models pulled into the cache volume before serving.

Ollama has no Prometheus endpoint in its released versions (ollama#3144): the adapter declares
none, so no scrape target and no metrics ingress rule are created; availability is watched through
the probes and kube-state-metrics instead.
"""

from __future__ import annotations

from infra.config.engines import MODELFILE_TRIPLE_QUOTE, OllamaSettings, modelfile_text_problem
from infra.config.images import ImageRef
from infra.config.model import ModelConfig
from infra.engines.base import EngineContext, EngineSpec, PrepareStep, WritablePath
from infra.templating import render_template

OLLAMA_IMAGE = ImageRef(repository="ollama/ollama", tag="0.20.6")
PORT = 11434
CACHE = "/models"
MODELFILE = "Modelfile"

# The init container starts a private server on loopback, pulls (and builds) the model into the
# cache volume, then stops it. `set -eu`: any failed step fails the pod, visibly, before it serves.
_PREPARE_SCRIPT = """set -eu
OLLAMA_HOST=127.0.0.1:11434 ollama serve >/tmp/ollama-prepare.log 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
tries=0
until OLLAMA_HOST=127.0.0.1:11434 ollama list >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -gt 60 ]; then cat /tmp/ollama-prepare.log >&2; exit 1; fi
  sleep 1
done
export OLLAMA_HOST=127.0.0.1:11434
ollama pull "$SLM_MODEL"
if [ -n "${SLM_MODELFILE:-}" ]; then
  ollama create "$SLM_SERVED_NAME" -f "$SLM_MODELFILE"
elif [ "$SLM_SERVED_NAME" != "$SLM_MODEL" ]; then
  ollama cp "$SLM_MODEL" "$SLM_SERVED_NAME"
fi
"""


def modelfile_string(text: str, *, triple: bool = False) -> str:
    """``text`` as a Modelfile string that Ollama's parser reads back exactly.

    The parser (parser/parser.go) has no escapes: a string in double quotes ends at the first line that ends
    with a quote, one in triple quotes at the first line that ends with three. So text without quotes may go in
    double quotes; text with quotes goes in triple quotes (``triple`` asks for them always); text with three
    quotes in a row cannot be written. The config refuses such text; this raises rather than write a Modelfile
    that says something else.
    """
    problem = modelfile_text_problem(text)
    if problem is not None:
        raise ValueError(f"cannot be written in a Modelfile: it {problem}")
    quote = MODELFILE_TRIPLE_QUOTE if triple or '"' in text else '"'
    return f"{quote}{text}{quote}"


def modelfile(base: str, settings: OllamaSettings) -> str | None:
    """The Modelfile of a custom model, or ``None`` when the stack serves the base model as it is.

    Every string is quoted by :func:`modelfile_string`: a system prompt or a stop string cannot end its
    quotes early and add instructions (a second ``FROM``, an ``ADAPTER``) to the Modelfile.
    """
    if settings.modelfile is None:
        return None
    if not base or any(c.isspace() or not c.isprintable() for c in base):
        raise ValueError(f"the base model {base!r} is not an Ollama model name")
    parameters = [
        (name, modelfile_string(v) if isinstance(v, str) else v)
        for name, v in sorted(settings.modelfile.parameters.items())
    ]
    system = settings.modelfile.system
    return render_template(
        "ollama/Modelfile.j2",
        base=base,
        system=modelfile_string(system, triple=True) if system else None,
        parameters=parameters,
    )


def ollama_engine(model: ModelConfig, context: EngineContext) -> EngineSpec:
    settings = model.ollama or OllamaSettings()
    home = f"{CACHE}/home"
    env = {
        # Listen on the pod network; the init container overrides this with loopback.
        "OLLAMA_HOST": f"0.0.0.0:{PORT}",
        "OLLAMA_MODELS": f"{CACHE}/ollama",
        "OLLAMA_KEEP_ALIVE": settings.keep_alive,
        "OLLAMA_NUM_PARALLEL": str(settings.num_parallel),
        "OLLAMA_MAX_QUEUE": str(settings.max_queue),
        # Ollama keeps its key pair in ~/.ollama: HOME lives on the cache volume, not the read-only root.
        "HOME": home,
        "OLLAMA_NOPRUNE": "1",
    }
    text = modelfile(model.model_id, settings)
    config_mount = "/etc/slm-deploy/engine"
    prepare_env = {"SLM_MODEL": model.model_id, "SLM_SERVED_NAME": model.api_model_name}
    if text is not None:
        prepare_env["SLM_MODELFILE"] = f"{config_mount}/{MODELFILE}"
    return EngineSpec(
        app_name="ollama",
        container_name="ollama",
        image=model.image or OLLAMA_IMAGE,
        command=["ollama"],
        args=["serve"],
        env=env,
        port=PORT,
        # /api/version answers once the server is up; models are already pulled by then.
        health_path="/api/version",
        metrics_path=None,
        metrics_port=None,
        cache_mount_path=CACHE,
        writable_paths=[WritablePath("tmp", "/tmp", size_limit="2Gi")],
        prepare=(PrepareStep(name="pull-model", command=["/bin/sh", "-c", _PREPARE_SCRIPT], env=prepare_env),),
        config_files={MODELFILE: text} if text is not None else {},
        config_mount_path=config_mount,
    )
