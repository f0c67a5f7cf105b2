"""In-process checks: stop strings, settings, the image template, model preparation, the committed model."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
from onnx_server_helpers import ANSWER, SERVER_DIR, TINY_MODEL, require

from tests.helpers import unavailable

BUILD_TOOLS = ("torch", "transformers", "onnx_ir", "tokenizers", "onnxruntime_genai")


def build_tools_missing() -> str | None:
    missing = [m for m in BUILD_TOOLS if importlib.util.find_spec(m) is None]
    if missing:
        return f"build tools not installed ({', '.join(missing)}): pip install -r servers/onnx/requirements-build.txt"
    torch_version = importlib.metadata.version("torch")
    if torch_version.split("+")[0] != "2.13.0":
        return f"the committed model was built with torch 2.13.0, not {torch_version}"
    return None


def build_python() -> str:
    """An interpreter with the build tools: this one when it has them, else the conversion virtualenv that
    scripts/smollm2-onnx.sh makes (scripts/run.sh test runs it first; without it the test fails in CI)."""
    if build_tools_missing() is None:
        return sys.executable
    script = SERVER_DIR.parents[1] / "scripts" / "smollm2-onnx.sh"
    done = subprocess.run(["bash", str(script), "venv"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        unavailable(
            f"the build tools are not installed and scripts/smollm2-onnx.sh venv failed:\n{done.stderr[-2000:]}"
        )
    return done.stdout.strip().split("=", 1)[1]


# --- stop strings -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pieces", "stops", "emitted", "hit"),
    [
        (["Hello", " wor", "ld"], [], "Hello world", False),
        (["Hello", " wor", "ld"], ["world"], "Hello ", True),
        (["Hel", "lo"], ["lo"], "Hel", True),
        (["ab", "c", "d"], ["cx"], "abcd", False),  # "c" is held back, then released
        (["The end", ".", " More"], ["end.", "More"], "The ", True),
        (["xyz"], ["y"], "x", True),
    ],
)
def test_stop_matcher(pieces: list[str], stops: list[str], emitted: str, hit: bool) -> None:
    from slm_onnx_server.stops import StopMatcher

    matcher = StopMatcher(stops)
    out = ""
    found = False
    for piece in pieces:
        text, found = matcher.feed(piece)
        out += text
        if found:
            break
    out += matcher.flush()
    assert (out, found) == (emitted, hit)


def test_stop_matcher_holds_back_a_possible_start() -> None:
    from slm_onnx_server.stops import StopMatcher

    matcher = StopMatcher(["<END>"])
    assert matcher.feed("abc<E") == ("abc", False)
    assert matcher.feed("N") == ("", False)
    assert matcher.feed("X") == ("<ENX", False)


# --- settings -----------------------------------------------------------------------------------------------


def test_settings_defaults_and_errors(tmp_path: Path) -> None:
    from slm_onnx_server.config import ConfigError, Settings

    settings = Settings.from_env({"SLM_ONNX_MODEL_PATH": "/models/phi"})
    assert (settings.served_model_name, settings.port, settings.max_batch_size, settings.max_queue) == (
        "phi", 8000, 4, 16,
    )  # fmt: skip
    assert settings.max_body_bytes == 4 * 1024 * 1024
    legacy = Settings.from_env({"SLM_ONNX_MODEL_PATH": "m", "SLM_ONNX_MAX_CONCURRENCY": "2"})
    assert legacy.max_batch_size == 2  # the old name still works
    assert Settings.from_env({"SLM_ONNX_MODEL_PATH": "m", "SLM_ONNX_MAX_BATCH_SIZE": "8"}).max_batch_size == 8
    assert settings.read_api_key() is None
    for env, message in [
        ({}, "SLM_ONNX_MODEL_PATH is required"),
        ({"SLM_ONNX_MODEL_PATH": "m", "SLM_ONNX_MAX_CONCURRENCY": "0"}, "at least 1"),
        ({"SLM_ONNX_MODEL_PATH": "m", "SLM_ONNX_PORT": "http"}, "expected an integer"),
        ({"SLM_ONNX_MODEL_PATH": "m", "SLM_ONNX_EXECUTION_PROVIDER": "tpu"}, "cpu or cuda"),
    ]:
        with pytest.raises(ConfigError, match=message):
            Settings.from_env(env)
    key = tmp_path / "key"
    key.write_text("  s3cret\n")
    assert Settings.from_env({"SLM_ONNX_MODEL_PATH": "m", "SLM_ONNX_API_KEY_FILE": str(key)}).read_api_key() == "s3cret"
    key.write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        Settings.from_env({"SLM_ONNX_MODEL_PATH": "m", "SLM_ONNX_API_KEY_FILE": str(key)}).read_api_key()


def test_api_keys_file_is_the_entry_points_json(tmp_path: Path) -> None:
    from slm_onnx_server.config import ConfigError, Settings

    keys = tmp_path / "keys.json"
    keys.write_text('{"team-a": "aaaaaaaaaaaaaaaa", "team-b": "bbbbbbbbbbbbbbbb"}')
    settings = Settings.from_env({"SLM_ONNX_MODEL_PATH": "m", "SLM_ONNX_API_KEYS_FILE": str(keys)})
    assert settings.read_api_keys() == {"team-a": "aaaaaaaaaaaaaaaa", "team-b": "bbbbbbbbbbbbbbbb"}
    for text in ("[]", "{}", '{"a": 5}', "not json"):
        keys.write_text(text)
        with pytest.raises(ConfigError, match="API_KEYS_FILE") as raised:
            settings.read_api_keys()
        assert "aaaa" not in str(raised.value)  # never quotes the secret


def test_server_exits_2_on_bad_config() -> None:
    require("fastapi", "uvicorn", "prometheus_client")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(SERVER_DIR), "SLM_ONNX_PORT": "x", "SLM_ONNX_MODEL_PATH": "m"}
    result = subprocess.run([sys.executable, "-m", "slm_onnx_server"], env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: SLM_ONNX_PORT: expected an integer, got 'x'"


def test_metric_token_buckets_follow_vllm() -> None:
    require("prometheus_client", "onnxruntime_genai")
    from slm_onnx_server.metrics import token_buckets

    assert token_buckets(256) == (1, 2, 5, 10, 20, 50, 100, 200)


# --- image template -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("build_tools", [False, True])
def test_dockerfile_template_renders_a_hardened_image(build_tools: bool) -> None:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(SERVER_DIR.parent.parent / "templates" / "docker")),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    text = env.get_template("onnx-server.Dockerfile.j2").render(
        base_image="python:3.11.14-slim-bookworm", uid=10001, port=8000, build_tools=build_tools
    )
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    instructions = [line.split()[0] for line in lines if not line.startswith(" ")]
    assert instructions[0] == "FROM" and instructions.count("FROM") == 1
    image = lines[0].split()[1]
    assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?", image), image
    users = [line for line in lines if line.startswith("USER ")]
    assert users == ["USER 10001:10001"]
    assert instructions.index("USER") > max(i for i, word in enumerate(instructions) if word == "RUN")
    assert "HEALTHCHECK" not in instructions and "ADD" not in instructions
    for run in (line for line in lines if line.startswith("RUN ")):
        argv = json.loads(run[4:])  # exec form only: no shell, no pipes, no curl | sh
        if "pip" in argv:
            assert "--no-cache-dir" in argv and "--requirement" in argv
    entrypoint = json.loads(next(line for line in lines if line.startswith("ENTRYPOINT "))[11:])
    assert entrypoint == ["python", "-m", "slm_onnx_server.prepare" if build_tools else "slm_onnx_server"]
    assert ('requirements-build.txt"]' in text) == build_tools
    for requirements in ("requirements.txt", "requirements-build.txt"):
        for line in (SERVER_DIR / requirements).read_text().splitlines():
            if line and not line.startswith("#"):
                assert re.fullmatch(r"[\w.-]+==[\w.]+", line), f"{requirements}: {line} is not pinned"


# --- the committed model and its build ----------------------------------------------------------------------


def manifest(folder: Path) -> dict[str, str]:
    entries = {}
    for line in (folder / "MANIFEST.sha256").read_text().splitlines():
        digest, name = line.split("  ", 1)
        entries[name] = digest
    return entries


def test_committed_model_matches_its_manifest() -> None:
    entries = manifest(TINY_MODEL)
    files = {p.name for p in TINY_MODEL.iterdir() if p.is_file() and p.name != "MANIFEST.sha256"}
    assert set(entries) == files
    for name, digest in entries.items():
        assert hashlib.sha256((TINY_MODEL / name).read_bytes()).hexdigest() == digest, name
    assert sum((TINY_MODEL / name).stat().st_size for name in files) < 1_000_000
    assert json.loads((TINY_MODEL / "answer.json").read_text())["answer"] == ANSWER


def test_rebuilding_the_tiny_model_gives_the_same_bytes(tmp_path: Path) -> None:
    script = SERVER_DIR / "tools" / "build_tiny_model.py"
    subprocess.run([build_python(), str(script), "--output", str(tmp_path / "rebuilt")], check=True,
                   capture_output=True)  # fmt: skip
    assert manifest(tmp_path / "rebuilt") == manifest(TINY_MODEL)


# --- model preparation --------------------------------------------------------------------------------------


def run_prepare(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slm_onnx_server.prepare", *args],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(SERVER_DIR)},
        capture_output=True,
        text=True,
    )


def test_prepare_skips_a_prepared_output_and_accepts_an_onnx_source(tmp_path: Path) -> None:
    output = tmp_path / "model"
    shutil.copytree(TINY_MODEL, output)
    result = run_prepare("--source", str(tmp_path / "nowhere"), "--output", str(output), "--precision", "int4")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"outcome": "already-prepared", "model": str(output)}
    result = run_prepare("--source", str(TINY_MODEL), "--output", str(tmp_path / "unused"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["outcome"] == "source-is-onnx"
    assert not (tmp_path / "unused").exists()


def test_prepare_refuses_broken_inputs(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(TINY_MODEL, broken)
    (broken / "model.onnx").unlink()
    result = run_prepare("--source", str(broken), "--output", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "missing model.onnx" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_prepare("--source", str(empty), "--output", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "no config.json" in result.stderr
    assert run_prepare("--source", "a", "--output", "b", "--precision", "int3").returncode == 2


def test_prepare_converts_a_hugging_face_folder_once(tmp_path: Path) -> None:
    python = build_python()
    hf = tmp_path / "hf"
    script = SERVER_DIR / "tools" / "build_tiny_model.py"
    subprocess.run([python, str(script), "--hf-only", "--output", str(hf)], check=True, capture_output=True)
    output = tmp_path / "volume" / "model"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(SERVER_DIR)}
    command = [python, "-m", "slm_onnx_server.prepare", "--source", str(hf), "--output", str(output),
               "--precision", "fp32", "--execution-provider", "cpu"]  # fmt: skip
    first = subprocess.run(command, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout.splitlines()[-1])["outcome"] == "converted"
    assert [p.name for p in output.parent.iterdir()] == ["model"]  # no staging folder left behind
    second = subprocess.run(command, env=env, capture_output=True, text=True)
    assert json.loads(second.stdout.splitlines()[-1])["outcome"] == "already-prepared"
    for name in ("model.onnx", "model.onnx.data", "genai_config.json"):
        assert (output / name).read_bytes() == (TINY_MODEL / name).read_bytes(), name


# --- fetching a GGUF source ---------------------------------------------------------------------------------


def run_fetch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slm_onnx_server.fetch_gguf", *args],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(SERVER_DIR)},
        capture_output=True,
        text=True,
    )


def test_fetch_keeps_a_file_or_model_already_there(tmp_path: Path) -> None:
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    url = ["--url", "https://example.invalid/m.gguf", "--sha256", "0" * 64]
    result = run_fetch("--file", "m.gguf", "--dir", str(tmp_path), *url)
    assert (result.returncode, result.stdout) == (0, f"already-fetched: {tmp_path / 'm.gguf'}\n"), result.stderr
    converted = tmp_path / "onnx"
    shutil.copytree(TINY_MODEL, converted)
    result = run_fetch("--file", "other.gguf", "--dir", str(tmp_path), "--skip-if", str(converted), *url)
    assert result.returncode == 0 and result.stdout.startswith("already-prepared"), result.stderr
    assert not (tmp_path / "other.gguf").exists()


def test_fetch_refuses_bad_arguments(tmp_path: Path) -> None:
    assert run_fetch("--file", "m.gguf", "--dir", str(tmp_path), "--url", "https://example.invalid/m").returncode == 2
    assert run_fetch("--file", "../m.gguf", "--dir", str(tmp_path), "--repo", "a/b").returncode == 2
    result = run_fetch("--file", "m.gguf", "--dir", str(tmp_path), "--url", "http://example.invalid/m", "--sha256", "0")
    assert result.returncode == 1 and "only https://" in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing partial left behind
