"""slm-deploy bench, for real against a local streaming server on 127.0.0.1; the in-cluster Job spec."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "verify"))
from verify_local_target import LocalServer, require_onnx_server, start_local_server

from infra.loadtest.bench import (
    BenchError,
    api_base,
    bench_command,
    parse_levels,
    percentile,
    render_table,
    run_bench,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def standin() -> Iterator[LocalServer]:
    server = start_local_server(prefer_onnx=False, token_delay=0.002)
    yield server
    server.stop()


def test_bench_measures_a_streaming_server(standin: LocalServer) -> None:
    base, model, levels = run_bench(standin.base_url, None, "1,4", 12, None, max_tokens=8, progress=True)
    assert base == f"{standin.base_url}/v1" and model == "standin"  # the model comes from /v1/models
    assert [level.concurrency for level in levels] == [1, 4]
    for level in levels:
        assert (level.requests, level.completed, level.errors) == (12, 12, 0)
        assert level.output_tokens == 12 * 8  # from the usage chunk
        assert level.ttft_p50_ms is not None and 0 < level.ttft_p50_ms <= level.ttft_p95_ms  # type: ignore[operator]
        # The server sleeps 2 ms per token; on a loaded machine the client may read some tokens in one chunk,
        # so the median can be near zero, but the slow end shows the sleep.
        assert level.itl_p95_ms is not None and level.itl_p95_ms >= 1.0
        assert level.output_tokens_per_s > 0 and level.requests_per_s > 0
    # Four at a time finish sooner than one at a time.
    assert levels[1].duration_s < levels[0].duration_s
    table = render_table(levels, base, model)
    assert "TTFT p50 ms" in table and "Output tok/s" in table


def test_bench_command_json_and_exit_status(standin: LocalServer, capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:  # fmt: skip
    key = tmp_path / "key"
    key.write_text("sk-local-test\n")
    assert bench_command(standin.base_url + "/v1", "standin", [2], 4, key, "json", 4) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "standin" and data["levels"][0]["completed"] == 4
    assert "sk-local-test" not in json.dumps(data)
    assert bench_command(standin.base_url, "no-such-model", [1], 2, None, "text", 4) == 1
    out = capsys.readouterr().out
    assert "HTTP 404" in out


def test_errors_are_counted() -> None:
    server = start_local_server(prefer_onnx=False, fail_every=3)
    try:
        _, _, (level,) = run_bench(server.base_url, "standin", [3], 9, None, max_tokens=4, progress=False)
    finally:
        server.stop()
    assert (level.requests, level.completed, level.errors) == (9, 6, 3)
    assert level.error_samples == ["HTTP 500"]


def test_time_budget_bounds_a_level() -> None:
    server = start_local_server(prefer_onnx=False, token_delay=0.05)
    try:
        _, _, (level,) = run_bench(server.base_url, "standin", [1], 500, None, 8, time_budget_s=0.5, progress=False)
    finally:
        server.stop()
    assert 1 <= level.requests < 10 and level.errors == 0


def test_unreachable_endpoint_is_an_error_not_a_hang() -> None:
    from verify_local_target import free_port

    # Said before anything is timed (tests/loadtest/test_bench_tls.py has the wording).
    with pytest.raises(BenchError, match="connection refused"):
        run_bench(f"http://127.0.0.1:{free_port()}", "m", [1], 2, None, 4, progress=False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"base_url": "ftp://127.0.0.1"}, "http(s) URL"),
        ({"concurrency_levels": "1,x"}, "integers"),
        ({"concurrency_levels": "0"}, "between 1 and 512"),
        ({"requests": 0}, "--requests"),
        ({"max_tokens": 100_000}, "--max-tokens"),
        ({"api_key_file": Path("/nonexistent/key")}, "No such file"),
        ({"output_format": "csv"}, "unknown format"),
        ({}, "cannot reach 127.0.0.1:9"),
    ],
)
def test_bad_input_exits_2(args: dict[str, object], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    values: dict[str, object] = {
        "base_url": "http://127.0.0.1:9",
        "model": "m",
        "concurrency_levels": "1",
        "requests": 1,
        "api_key_file": None,
        "output_format": "text",
        "max_tokens": 4,
        **args,
    }
    assert bench_command(**values) == 2  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_helpers() -> None:
    assert parse_levels("1, 4,16") == [1, 4, 16]
    assert api_base("http://h:8000") == api_base("http://h:8000/v1/") == "http://h:8000/v1"
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5 and percentile([], 50) is None
    with pytest.raises(BenchError):
        api_base("http://h:8000/v1?x=1")


def test_bench_against_the_onnx_server() -> None:
    require_onnx_server()
    server = start_local_server(prefer_onnx=True, unprivileged=False)
    assert server.kind == "onnx"
    try:
        _, model, (level,) = run_bench(server.base_url, None, [2], 4, None, max_tokens=8, progress=False)
    finally:
        server.stop()
    assert model == "tiny-llama" and level.completed == 4 and level.ttft_p50_ms is not None


def test_job_spec_is_hardened_like_the_model_servers(tmp_path: Path) -> None:
    import kubernetes_validate

    from infra.config.loader import load_stack_file
    from infra.loadtest.job import bench_job_spec

    config = load_stack_file(ROOT / "stacks" / "Pulumi.dev.yaml")
    model = config.models[0]
    job = bench_job_spec(model, config, "registry.invalid/slm-deploy:0.1.0")
    kubernetes_validate.validate(job, config.kubernetes_version, strict=True)
    pod = job["spec"]["template"]["spec"]
    hardening = model.hardening
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == hardening.run_as_user
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False and pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsGroup": hardening.run_as_group,
        "runAsNonRoot": True,
        "runAsUser": hardening.run_as_user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["resources"]["limits"] and container["resources"]["requests"]
    args = container["args"]
    assert args[args.index("--url") + 1] == f"http://{model.name}.{model.k8s_namespace}.svc.cluster.local:11434/v1"
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["activeDeadlineSeconds"] == 1800
