"""``size_command``: the function behind ``slm-deploy size MODEL``."""

from __future__ import annotations

import json

import pytest

from infra.sizing.cli import size_command


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert size_command("qwen3-14b", "bf16", 8192, 1, None, "json") == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["key"], out["tier"], out["fits"], out["error"]) == ("qwen3-14b", "medium", True, None)
    assert out["model"] == "Qwen3-14B"
    # camelCase keys, as every JSON output (docs/cli.md).
    assert out["breakdown"]["weightsGb"] == pytest.approx(29.6)
    assert out["choice"]["vmSize"] == "Standard_NV72ads_A10_v5"
    assert out["vllmFlags"][:2] == ["--max-model-len", "8192"]
    assert out["kvCacheDtype"] and "kv_cache_dtype" not in out
    assert len(out["fitsOn"]) == 11
    assert {"vmSize", "neededPerGpuGb", "availablePerGpuGb", "fits"} <= set(out["fitsOn"][0])


def test_json_when_the_given_size_is_too_small(capsys: pytest.CaptureFixture[str]) -> None:
    assert size_command("qwen3-14b", "bf16", None, 1, "Standard_NC4as_T4_v3", "json") == 1
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["fits"] is False and out["choice"] is None
    assert "short by" in out["error"]
    assert captured.err.startswith("error: Qwen3-14B (bf16") and captured.err.count("\n") == 1


def test_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert size_command("phi-4-mini-instruct", "int4", 4096, 16, None, "text") == 0
    out = capsys.readouterr().out
    for text in ("Weights", "KV cache", "Overhead", "Total", "Fits on", "Standard_NC4as_T4_v3", "vLLM flags"):
        assert text in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("qwen-14b", "bf16", None, 1, None, "text"), "unknown model 'qwen-14b' (did you mean qwen3-14b"),
        (("qwen3-8b", "int3", None, 1, None, "text"), "unknown precision 'int3'"),
        (("qwen3-8b", "bf16", 65536, 1, None, "json"), "exceeds the model's native context length 32768"),
        (("qwen3-8b", "bf16", None, 1, "Standard_T4", "text"), "unknown GPU VM size 'Standard_T4'"),
        (("qwen3-8b", "bf16", None, 1, None, "yaml"), "unknown format 'yaml'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: tuple[str, str, int | None, int, str | None, str], message: str
) -> None:
    assert size_command(*args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and message in captured.err
    assert captured.err.count("\n") == 1
