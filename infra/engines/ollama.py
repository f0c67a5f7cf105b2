"""Ollama (``ollama/ollama``): CPU or GPU, models readied in the cache volume before serving.

With ``network.modelDownload: allow`` the init container pulls the model; with ``deny`` (the default) it only
checks that the model is already in the cache volume and fails at once, saying so, when it is not
(docs/model-cache.md says how to pre-fill it).

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

# The init container starts a private server on loopback, readies the model in the cache volume, then stops
# it. `set -eu`: any failed step fails the pod, visibly, before it serves.
_START_SERVER = """set -eu
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
"""
# Downloads allowed: pull (a no-op for layers already in the cache).
_PULL = """ollama pull "$SLM_MODEL"
"""
# Downloads denied (the egress policy would make a pull hang, then fail): the model must be in the cache
# already; say so at once, in words that name the fix.
_REQUIRE_CACHED = """if ! ollama show "$SLM_MODEL" >/dev/null 2>&1; then
  echo "slm-deploy: model '$SLM_MODEL' is not in the model cache (OLLAMA_MODELS=${OLLAMA_MODELS:-unset}) and \
network.modelDownload is deny, so it is not pulled: pre-fill the cache volume (see docs/model-cache.md) or allow \
downloads" >&2
  exit 1
fi
"""
# Both: build the served model from the base one (Modelfile), or copy the tag under the served name. Local only.
_BUILD = """if [ -n "${SLM_MODELFILE:-}" ]; then
  ollama create "$SLM_SERVED_NAME" -f "$SLM_MODELFILE"
elif [ "$SLM_SERVED_NAME" != "$SLM_MODEL" ]; then
  ollama cp "$SLM_MODEL" "$SLM_SERVED_NAME"
fi
"""


def prepare_script(downloads_allowed: bool) -> str:
    """The init container's shell script: pull the model when downloads are allowed, else require it cached."""
    return _START_SERVER + (_PULL if downloads_allowed else _REQUIRE_CACHED) + _BUILD


#: The script with downloads allowed (``network.modelDownload: allow``).
_PREPARE_SCRIPT = prepare_script(downloads_allowed=True)
#: The script with downloads denied: no ``ollama pull``, a clear failure when the model is not cached.
_OFFLINE_SCRIPT = prepare_script(downloads_allowed=False)


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
        # /api/version answers once the server is up; models are already in the cache by then.
        health_path="/api/version",
        metrics_path=None,
        metrics_port=None,
        cache_mount_path=CACHE,
        writable_paths=[WritablePath("tmp", "/tmp", size_limit="2Gi")],
        prepare=(
            PrepareStep(
                # The step's name stays: renaming an init container would restart every Ollama pod.
                name="pull-model",
                command=["/bin/sh", "-c", prepare_script(context.downloads_allowed)],
                env=prepare_env,
            ),
        ),
        config_files={MODELFILE: text} if text is not None else {},
        config_mount_path=config_mount,
        # No api_key_file: Ollama's server has no authentication at all; the network policy guards its port.
    )
