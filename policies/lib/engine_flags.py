"""What each serving engine's command line and environment may carry: allow-lists, dangerous names, and
the engines' own parsing (so that ``--trust_remote_code`` is read as vLLM reads it).

The allow-lists are the pack's config, extended per level with ``engine-argument-allow-list``'s
``extraFlags`` (a reviewed change to ``policies/config/<level>.json``, never to a stack file). Every name here
is in the engine's argument definitions at the version slm-deploy pins:

- vLLM v0.14.0 (``vllm/vllm-openai:v0.14.0``): ``vllm/engine/arg_utils.py`` (``EngineArgs``: one flag per
  field, ``--`` + the field name with ``_`` as ``-``) and ``vllm/entrypoints/openai/cli_args.py``
  (``FrontendArgs``); ``FlexibleArgumentParser`` reads ``--a_b`` as ``--a-b`` and ``--flag=value`` as
  ``--flag value``; boolean fields also get ``--no-<flag>``.
- llama.cpp as vendored by llama-cpp-python 0.3.36 (the ``server-b…`` image the engine pins is the same
  source line): ``vendor/llama.cpp/common/arg.cpp``. ``common_params_parse_ex`` replaces ``_`` with ``-``
  in arguments starting with ``--`` and reads every option from its ``LLAMA_ARG_*`` environment variable
  too (``set_env``); there is no ``--flag=value`` form (treated here as the flag, which is stricter).
- Ollama 0.20.6 (``ollama/ollama:0.20.6``): no server flags (``ollama serve``); settings are
  ``OLLAMA_*`` environment variables read by ``envconfig/config.go``.

*Dangerous* names are reported at every level by ``engine-arguments`` whatever the allow-lists say.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .images import parse_image
from .k8s import get, is_map, items

VLLM = "vllm"
LLAMACPP = "llamacpp"
OLLAMA = "ollama"
ENGINES = (VLLM, LLAMACPP, OLLAMA)

#: vLLM flags slm-deploy sets or knows to be safe (arg_utils.py EngineArgs / cli_args.py FrontendArgs).
VLLM_FLAGS = frozenset(
    {
        # set by the engine module (infra/engines/vllm.py)
        "--host",
        "--port",
        "--served-model-name",
        "--gpu-memory-utilization",
        "--tensor-parallel-size",
        "--dtype",
        "--max-model-len",
        "--max-num-seqs",
        "--quantization",
        # multi-LoRA from the stack's `lora` (adapters declared and loaded at start-up; loading at run time stays
        # dangerous: VLLM_ALLOW_RUNTIME_LORA_UPDATING below)
        "--enable-lora",
        "--lora-modules",
        "--max-lora-rank",
        "--max-loras",
        # scheduling, memory and caching
        "--max-num-batched-tokens",
        "--enable-chunked-prefill",
        "--no-enable-chunked-prefill",
        "--enable-prefix-caching",
        "--no-enable-prefix-caching",
        "--kv-cache-dtype",
        "--block-size",
        "--swap-space",
        "--cpu-offload-gb",
        "--enforce-eager",
        "--no-enforce-eager",
        "--max-num-partial-prefills",
        "--long-prefill-token-threshold",
        "--scheduling-policy",
        "--pipeline-parallel-size",
        "--data-parallel-size",
        "--enable-expert-parallel",
        "--disable-custom-all-reduce",
        "--async-scheduling",
        "--seed",
        "--max-logprobs",
        "--limit-mm-per-prompt",
        # model and tokenizer (revisions pin what the cache holds)
        "--revision",
        "--tokenizer-revision",
        "--code-revision",
        "--tokenizer-mode",
        "--generation-config",
        # OpenAI front end behaviour
        "--response-role",
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "--reasoning-parser",
        "--chat-template-content-format",
        "--enable-prompt-tokens-details",
        "--max-log-len",
        "--disable-fastapi-docs",
        "--enable-request-id-headers",
        "--enable-force-include-usage",
        "--return-tokens-as-token-ids",
        # logging
        "--disable-log-stats",
        "--enable-log-requests",
        "--disable-log-requests",
        "--uvicorn-log-level",
        "--disable-uvicorn-access-log",
    }
)
#: vLLM's short spellings (arg_utils.py ``flags``) and the long flag each stands for.
VLLM_SHORT = {
    "-tp": "--tensor-parallel-size",
    "-pp": "--pipeline-parallel-size",
    "-dp": "--data-parallel-size",
    "-q": "--quantization",
    "-O": "--compilation-config",
}

#: The llama-server flags the llamacpp engine sets itself (short and long spellings, common/arg.cpp); a stack's
#: ``llamacpp.extraArgs`` may not repeat them (``infra/config/engines.py``).
LLAMACPP_ENGINE_FLAGS = frozenset(
    {
        "-m",
        "--model",
        "--host",
        "--port",
        "-c",
        "--ctx-size",
        "-np",
        "--parallel",
        "-t",
        "--threads",
        "--metrics",
        "-a",
        "--alias",
        "-ngl",
        "--gpu-layers",
        "--n-gpu-layers",
    }
)

#: llama-server flags slm-deploy sets or knows to be safe (common/arg.cpp), long and short spellings.
LLAMACPP_FLAGS = LLAMACPP_ENGINE_FLAGS | frozenset(
    {
        # set by the engine module when the stack's API keys are mounted
        "--api-key-file",
        # batching, memory, caches
        "-b",
        "--batch-size",
        "-ub",
        "--ubatch-size",
        "-tb",
        "--threads-batch",
        "-cb",
        "--cont-batching",
        "-nocb",
        "--no-cont-batching",
        "-fa",
        "--flash-attn",
        "-ctk",
        "--cache-type-k",
        "-ctv",
        "--cache-type-v",
        "-kvu",
        "--kv-unified",
        "-no-kvu",
        "--no-kv-unified",
        "--cache-reuse",
        "--cache-prompt",
        "--no-cache-prompt",
        "-cram",
        "--cache-ram",
        "--context-shift",
        "--no-context-shift",
        "-dt",
        "--defrag-thold",
        "--swa-full",
        "-kvo",
        "--kv-offload",
        "-nkvo",
        "--no-kv-offload",
        "--no-host",
        "--numa",
        "-sm",
        "--split-mode",
        "-ts",
        "--tensor-split",
        "-mg",
        "--main-gpu",
        "-dev",
        "--device",
        # generation defaults and chat handling
        "-n",
        "--predict",
        "--n-predict",
        "--temp",
        "--temperature",
        "--top-k",
        "--top-p",
        "--min-p",
        "--repeat-penalty",
        "--presence-penalty",
        "--frequency-penalty",
        "--jinja",
        "--no-jinja",
        "--reasoning-format",
        "--reasoning-budget",
        "--chat-template",
        "--chat-template-kwargs",
        "--rope-scaling",
        "--rope-scale",
        "--rope-freq-base",
        "--rope-freq-scale",
        "--yarn-orig-ctx",
        "--pooling",
        "--embedding",
        "--embeddings",
        "--rerank",
        "--reranking",
        # serving
        "-to",
        "--timeout",
        "--threads-http",
        "--sse-ping-interval",
        "--no-slots",
        "--no-ui",
        "--no-webui",
        "--log-disable",
        "-lv",
        "--verbosity",
        "--log-verbosity",
        "--log-prefix",
        "--log-timestamps",
        "--no-warmup",
        "--warmup",
    }
)
#: ``LLAMA_ARG_*`` variables (arg.cpp ``set_env``) and the flag each one sets.
LLAMACPP_ENV = {
    "LLAMA_ARG_MODEL": "--model",
    "LLAMA_ARG_MODEL_URL": "--model-url",
    "LLAMA_ARG_HF_REPO": "--hf-repo",
    "LLAMA_ARG_DOCKER_REPO": "--docker-repo",
    "LLAMA_ARG_STATIC_PATH": "--path",
    "LLAMA_ARG_ENDPOINT_PROPS": "--props",
    "LLAMA_ARG_ENDPOINT_SLOTS": "--slots",
    "LLAMA_ARG_ENDPOINT_METRICS": "--metrics",
    "LLAMA_ARG_CORS_ORIGINS": "--cors-origins",
    "LLAMA_ARG_TOOLS": "--tools",
    "LLAMA_ARG_TOOLS_RUNTIME": "--tools-runtime",
    "LLAMA_ARG_MCP_SERVERS_CONFIG": "--mcp-servers-config",
    "LLAMA_ARG_MCP_SERVERS_JSON": "--mcp-servers-json",
    "LLAMA_ARG_UI_MCP_PROXY": "--ui-mcp-proxy",
    "LLAMA_ARG_MMPROJ_URL": "--mmproj-url",
    "LLAMA_ARG_MODELS_DIR": "--models-dir",
    "LLAMA_ARG_MODELS_PRESET": "--models-preset",
    "LLAMA_ARG_SPEC_DRAFT_HF_REPO": "--hf-repo-draft",
    "LLAMA_ARG_RPC": "--rpc",
    "LLAMA_ARG_HOST": "--host",
    "LLAMA_ARG_PORT": "--port",
    "LLAMA_ARG_CTX_SIZE": "--ctx-size",
    "LLAMA_ARG_N_PARALLEL": "--parallel",
    "LLAMA_ARG_THREADS": "--threads",
    "LLAMA_ARG_N_GPU_LAYERS": "--n-gpu-layers",
    "LLAMA_ARG_ALIAS": "--alias",
    "LLAMA_ARG_CONT_BATCHING": "--cont-batching",
    "LLAMA_ARG_BATCH": "--batch-size",
    "LLAMA_ARG_UBATCH": "--ubatch-size",
    "LLAMA_ARG_CACHE_TYPE_K": "--cache-type-k",
    "LLAMA_ARG_CACHE_TYPE_V": "--cache-type-v",
    "LLAMA_ARG_JINJA": "--jinja",
    "LLAMA_ARG_TIMEOUT": "--timeout",
    "LLAMA_ARG_UI": "--ui",
    "LLAMA_API_KEY": "--api-key",
    "LLAMA_ARG_CHAT_TEMPLATE_FILE": "--chat-template-file",
    "LLAMA_ARG_UI_CONFIG_FILE": "--ui-config-file",
    "LLAMA_ARG_SSL_KEY_FILE": "--ssl-key-file",
}

#: Ollama's settings (envconfig/config.go) slm-deploy sets or knows to be safe.
OLLAMA_ENV = frozenset(
    {
        "OLLAMA_HOST",
        "OLLAMA_MODELS",
        "OLLAMA_KEEP_ALIVE",
        "OLLAMA_NUM_PARALLEL",
        "OLLAMA_MAX_QUEUE",
        "OLLAMA_NOPRUNE",
        "OLLAMA_MAX_LOADED_MODELS",
        "OLLAMA_FLASH_ATTENTION",
        "OLLAMA_NOHISTORY",
        "OLLAMA_SCHED_SPREAD",
        "OLLAMA_DEBUG",
        "OLLAMA_CONTEXT_LENGTH",
        "OLLAMA_KV_CACHE_TYPE",
        "OLLAMA_LOAD_TIMEOUT",
        "OLLAMA_GPU_OVERHEAD",
        "OLLAMA_ORIGINS",
    }
)

#: Dangerous flags (after normalisation) → what they do; reported at every level.
DANGEROUS_FLAGS: Mapping[str, Mapping[str, str]] = {
    VLLM: {
        "--trust-remote-code": "runs Python code from the model repository inside the server (remote code)",
        "--allowed-local-media-path": "lets API clients read files of the container (local-file serving)",
        "--tool-parser-plugin": "imports a Python file into the server (remote code)",
        "--middleware": "imports Python code into the server (remote code)",
        "--tool-server": "runs tools (the demo one executes model-generated code)",
        "--config": "reads more flags from a file the gate does not see",
        "--hf-overrides": "rewrites the model's configuration",
    },
    LLAMACPP: {
        "--path": "serves the files of a directory over HTTP (local-file serving)",
        "--media-path": "lets API clients read files of a directory (local-file serving)",
        "--model-url": "downloads the model from a URL at start-up (model URL)",
        "-mu": "downloads the model from a URL at start-up (model URL)",
        "--hf-repo": "downloads the model from Hugging Face at start-up (model URL)",
        "-hf": "downloads the model from Hugging Face at start-up (model URL)",
        "-hfr": "downloads the model from Hugging Face at start-up (model URL)",
        "--docker-repo": "downloads the model from Docker Hub at start-up (model URL)",
        "-dr": "downloads the model from Docker Hub at start-up (model URL)",
        "--mmproj-url": "downloads a projector from a URL at start-up (model URL)",
        "--hf-repo-draft": "downloads a draft model at start-up (model URL)",
        "--props": "lets API clients change the server's global properties (POST /props)",
        "--slot-save-path": "lets API clients save and restore slots to files (slot saving)",
        "--lora": "loads LoRA adapters that API clients can switch at run time (runtime LoRA)",
        "--lora-scaled": "loads LoRA adapters that API clients can switch at run time (runtime LoRA)",
        "--lora-init-without-apply": "loads LoRA adapters for API clients to apply at run time (runtime LoRA)",
        "--tools": "gives the model built-in tools (shell, file read and write) in the server",
        "--tools-runtime": "runs the model's tools in another runtime",
        "--mcp-servers-config": "connects the server to MCP servers",
        "--mcp-servers-json": "connects the server to MCP servers",
        "--ui-mcp-proxy": "opens an MCP CORS proxy",
        "--webui-mcp-proxy": "opens an MCP CORS proxy",
        "--rpc": "offloads to remote RPC servers",
        "--models-dir": "serves every model of a directory (router mode)",
        "--models-preset": "loads models from a preset file (router mode)",
        "--chat-template-file": "reads a template from a file the gate does not see",
    },
    OLLAMA: {},
}
#: Dangerous values of otherwise known settings: origins ``*``.
WILDCARD_ORIGIN_FLAGS = {VLLM: ("--allowed-origins",), LLAMACPP: ("--cors-origins",), OLLAMA: ("OLLAMA_ORIGINS",)}
#: vLLM environment variables that change what API clients may do.
#: Runtime LoRA: the variable registers ``/v1/load_lora_adapter`` and ``/v1/unload_lora_adapter`` (and lets LoRA
#: resolver plugins load adapters a request names), so any API client could load weights into the server.
DANGEROUS_ENV = {
    "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "lets API clients load LoRA adapters at run time (runtime LoRA)",
}

ALLOWED: Mapping[str, frozenset[str]] = {VLLM: VLLM_FLAGS, LLAMACPP: LLAMACPP_FLAGS, OLLAMA: OLLAMA_ENV}


@dataclass(frozen=True)
class Setting:
    """One flag (or variable) as the engine reads it: canonical name, its value (``None``: none) and how it was
    written."""

    name: str
    value: str | None
    written: str
    from_env: bool = False


def engine_of(container: Mapping[str, Any]) -> str | None:
    """``vllm``, ``llamacpp``, ``ollama`` or ``None`` from the container's command and image."""
    words = [str(w) for w in (*items(get(container, "command")), *items(get(container, "args")))]
    program = words[0].rsplit("/", 1)[-1] if words else ""
    image = parse_image(str(get(container, "image") or ""))
    repository = image.repository.rsplit("/", 1)[-1]
    if program == "vllm" or "vllm.entrypoints" in " ".join(words[:3]) or repository == "vllm-openai":
        return VLLM
    if program == "llama-server" or (image.repository.endswith("llama.cpp") and program != "/bin/sh"):
        return LLAMACPP
    if program == "ollama" or repository == "ollama":
        return OLLAMA
    return None


def _vllm_name(token: str) -> str:
    flag = token.split("=", 1)[0]
    if flag.startswith("--"):
        flag = "--" + flag[2:].replace("_", "-").split(".", 1)[0]
    elif flag in VLLM_SHORT or (flag.startswith("-O") and len(flag) > 2):
        flag = VLLM_SHORT.get(flag, "--compilation-config")
    return flag


def _llamacpp_name(token: str) -> str:
    flag = token.split("=", 1)[0]
    return "--" + flag[2:].replace("_", "-") if flag.startswith("--") else flag


def settings(engine: str, container: Mapping[str, Any]) -> Iterator[Setting]:
    """The flags and variables the engine reads from this container, canonical as the engine parses them."""
    words = [str(w) for w in (*items(get(container, "command")), *items(get(container, "args")))]
    if engine in (VLLM, LLAMACPP):
        name_of = _vllm_name if engine == VLLM else _llamacpp_name
        for index, word in enumerate(words):
            if not word.startswith("-") or word == "-":
                continue
            following = words[index + 1] if index + 1 < len(words) else None
            value = (
                word.split("=", 1)[1]
                if "=" in word
                else (following if following is not None and not following.startswith("-") else None)
            )
            yield Setting(name_of(word), value, word)
    for variable in items(get(container, "env")):
        if not is_map(variable):
            continue
        name = str(variable.get("name", ""))
        value = variable.get("value")
        text = value if isinstance(value, str) else None
        if engine == LLAMACPP and name in LLAMACPP_ENV:
            yield Setting(LLAMACPP_ENV[name], text, name, from_env=True)
        elif engine == LLAMACPP and name.startswith("LLAMA_ARG_"):
            yield Setting("--" + name.removeprefix("LLAMA_ARG_").lower().replace("_", "-"), text, name, True)
        elif (engine == OLLAMA and name.startswith("OLLAMA_")) or name in DANGEROUS_ENV:
            yield Setting(name, text, name, from_env=True)


def danger(engine: str, setting: Setting) -> str | None:
    """What a dangerous setting does, or ``None``. A flag that abbreviates a dangerous one counts too
    (argparse accepts unambiguous prefixes)."""
    table = DANGEROUS_FLAGS.get(engine, {})
    if setting.name in DANGEROUS_ENV:
        value = (setting.value or "").strip().lower()
        return DANGEROUS_ENV[setting.name] if value not in ("", "0", "false") else None
    if setting.name in table:
        return table[setting.name]
    if setting.name in WILDCARD_ORIGIN_FLAGS.get(engine, ()) and "*" in (setting.value or ""):
        return "accepts browser requests from any origin (origins *)"
    if engine == VLLM and setting.name.startswith("--") and len(setting.name) > 4:
        for flag, what in table.items():
            if flag.startswith(setting.name) and setting.name not in ALLOWED[VLLM]:
                return f"{what} (abbreviation of {flag})"
    return None


def allowed(engine: str, name: str, extra: Mapping[str, Sequence[str]]) -> bool:
    return name in ALLOWED[engine] or name in set(extra.get(engine, ()))
