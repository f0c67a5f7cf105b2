"""USD per million output tokens: the stack's throughput (declared, or a bench file), full and expected load, in
`cost` and in the PR comment of a pool change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from infra.cli import app
from infra.config.throughput import Throughput
from infra.cost.tokens import ReplicaThroughput, bench_tokens_per_second, token_cost
from tests.helpers import copy_project

#: Test inputs, not claims about any GPU: per-replica full-load tokens/s of prod's qwen3-small (a T4 pool, 2 to
#: 6 replicas) and the load it is expected to carry.
TOKENS_PER_SECOND = 400
EXPECTED = 1000


def _project(root: Path, tmp_path: Path, throughput: dict[str, Any]) -> Path:
    project = copy_project(root, tmp_path / "project")
    stack = project / "stacks" / "Pulumi.prod.yaml"
    data = yaml.safe_load(stack.read_text())
    small = next(model for model in data["config"]["slm-deploy:models"] if model["name"] == "qwen3-small")
    small["throughput"] = throughput
    stack.write_text(yaml.safe_dump(data, sort_keys=False))
    return project


def _cost(project: Path) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["cost", "-s", "prod", "--root", str(project), "-f", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_cost_per_million_tokens_at_full_and_expected_load_by_hand(root: Path, tmp_path: Path) -> None:
    project = _project(root, tmp_path, {"tokensPerSecond": TOKENS_PER_SECOND, "expectedTokensPerSecond": EXPECTED})
    data = _cost(project)
    (small,) = [cost for cost in data["tokenCosts"] if cost["model"] == "qwen3-small"]
    # One replica takes one MIG 3g.40gb slice of an NC24ads_A100_v4 (2 slices a node) at westeurope's 4.775 USD/h.
    assert small["replicaHourly"] == 4.775 / 2 and small["tokensPerSecondPerReplica"] == TOKENS_PER_SECOND
    # Full load: 6 replicas x 2.3875 USD/h over 6 x 400 tokens/s x 3600 s, per million tokens.
    assert small["fullLoad"] == {"usdPerMillionOutputTokens": round(2.3875 / (400 * 3600) * 1e6, 4), "replicas": 6}
    # Expected load: 1000 tokens/s needs ceil(1000 / 400) = 3 replicas: 3 x 2.3875 USD/h over 1000 x 3600 tokens.
    assert small["expectedLoad"] == {
        "usdPerMillionOutputTokens": round(3 * 2.3875 / (1000 * 3600) * 1e6, 4),
        "tokensPerSecond": EXPECTED,
        "replicas": 3,
    }
    others = [cost for cost in data["tokenCosts"] if cost["model"] != "qwen3-small"]
    assert all(cost["fullLoad"]["usdPerMillionOutputTokens"] is None for cost in others)
    assert others[0]["note"] == "models[0].throughput is unset: no tokens/s to divide by"
    text = CliRunner().invoke(app, ["cost", "-s", "prod", "--root", str(project)]).stdout
    assert (
        "  qwen3-small: USD 1.658 per 1M output tokens at full load (6 replicas x 400 tokens/s), "
        "USD 1.99 per 1M output tokens at the expected 1000 tokens/s (3 replicas)"
    ) in text
    markdown = CliRunner().invoke(app, ["cost", "-s", "prod", "--root", str(project), "-f", "markdown"]).stdout
    assert "| `qwen3-small` | USD 1.658 per 1M output tokens | USD 1.99 per 1M output tokens |" in markdown


def test_a_bench_results_file_gives_the_figure(root: Path, tmp_path: Path) -> None:
    # The shape `slm-deploy bench --format json` writes; the figures are llama-server's with SmolLM2 on this
    # machine's 2 cores (97.6 tokens/s at c=1, 126.5 at c=4, /work/shared facts), and a level with errors that
    # must not count.
    bench = {
        "url": "http://127.0.0.1:8080/v1",
        "model": "smollm2",
        "maxTokens": 128,
        "levels": [
            {"concurrency": 1, "errors": 0, "outputTokensPerS": 97.6},
            {"concurrency": 4, "errors": 0, "outputTokensPerS": 126.5},
            {"concurrency": 16, "errors": 3, "outputTokensPerS": 300.0},
        ],
    }
    project = _project(root, tmp_path, {"benchResults": "bench/qwen3-small.json", "benchReplicas": 2})
    (project / "bench").mkdir()
    (project / "bench" / "qwen3-small.json").write_text(json.dumps(bench))
    assert bench_tokens_per_second(project / "bench" / "qwen3-small.json") == 126.5
    # A file of an earlier bench (snake_case keys) reads the same.
    legacy = tmp_path / "legacy.json"
    legacy.write_text(json.dumps({"levels": [{"errors": 0, "output_tokens_per_s": 50.0}]}))
    assert bench_tokens_per_second(legacy) == 50.0
    (small,) = [cost for cost in _cost(project)["tokenCosts"] if cost["model"] == "qwen3-small"]
    assert small["tokensPerSecondPerReplica"] == 126.5 / 2
    assert small["throughputSource"] == (
        "models[2].throughput.benchResults bench/qwen3-small.json (126.5 tokens/s over 2 replica(s))"
    )
    missing = _project(root, tmp_path / "other", {"benchResults": "bench/none.json"})
    (small,) = [cost for cost in _cost(missing)["tokenCosts"] if cost["model"] == "qwen3-small"]
    assert small["fullLoad"]["usdPerMillionOutputTokens"] is None
    assert small["note"] == "models[2].throughput.benchResults bench/none.json: No such file or directory"


def test_throughput_option_is_one_figure_or_the_other() -> None:
    assert Throughput.model_validate({"tokensPerSecond": 10}).tokens_per_second == 10
    with pytest.raises(ValidationError, match="not both"):
        Throughput.model_validate({"tokensPerSecond": 10, "benchResults": "b.json"})
    with pytest.raises(ValidationError, match="set tokensPerSecond"):
        Throughput.model_validate({"expectedTokensPerSecond": 10})
    with pytest.raises(ValidationError):
        Throughput.model_validate({"tokensPerSecond": 0})


def test_token_cost_edges() -> None:
    def hourly(replicas: int) -> float:
        return 2.0 * replicas

    # More expected than the maximum replicas can generate: priced at what they can serve, and said so.
    over = token_cost(ReplicaThroughput("m", 100, "declared", 1000), hourly, (1, 4))
    assert over.expected_replicas == 4 and over.expected_load == pytest.approx(8.0 / (400 * 3600) * 1e6)
    assert over.note is not None and "more than 4 replicas generate" in over.note
    # Little load still pays for the minimum replicas.
    idle = token_cost(ReplicaThroughput("m", 100, "declared", 10), hourly, (2, 4))
    assert idle.expected_replicas == 2 and idle.expected_load == pytest.approx(4.0 / (10 * 3600) * 1e6)
    unpriced = token_cost(ReplicaThroughput("m", 100, "declared"), lambda _: None, (1, 2))
    assert unpriced.full_load is None and unpriced.note == "the model's nodes are not priced"


def test_pr_comment_of_a_pool_change_shows_the_delta_and_the_token_figure(root: Path, tmp_path: Path) -> None:
    project = _project(root, tmp_path, {"tokensPerSecond": TOKENS_PER_SECOND, "expectedTokensPerSecond": EXPECTED})
    base = tmp_path / "base"
    assert CliRunner().invoke(app, ["render", "-s", "prod", "--root", str(project), "-o", str(base)]).exit_code == 0
    stack = project / "stacks" / "Pulumi.prod.yaml"
    text = stack.read_text()
    # The A100 pool gives up MIG: each replica takes a whole GPU, so the pool must grow to 8 nodes for the 2 + 6.
    data = yaml.safe_load(text)
    (pool,) = [p for p in data["config"]["slm-deploy:cluster"]["gpuPools"] if p["name"] == "a100"]
    assert pool["sharing"] == {"mode": "mig", "profile": "MIG3g"} and pool["maxCount"] == 4
    pool.update(sharing={"mode": "none"}, maxCount=8)
    stack.write_text(yaml.safe_dump(data, sort_keys=False))
    args = ["diff", "-s", "prod", "--root", str(project), "--base", str(base)]
    markdown = CliRunner().invoke(app, [*args, "-f", "markdown"]).stdout
    assert "### Monthly cost" in markdown
    # The a100 pool: 2 to 4 nodes at 4.775 USD/h (3,485.75 a month) before, 2 to 8 after (westeurope).
    assert (
        "| `pool a100` | USD 6,971.50 / USD 13,943.00 | USD 6,971.50 / USD 27,886.00 | ±0 / +USD 13,943.00 |"
        in (markdown)
    )
    assert "| Per 1M output tokens | Before (full / expected load) | After (full / expected load) |" in markdown
    assert (
        "| `qwen3-small` | USD 1.658 per 1M output tokens / USD 1.99 per 1M output tokens "
        "| USD 3.316 per 1M output tokens / USD 3.979 per 1M output tokens |"
    ) in markdown
    data = json.loads(CliRunner().invoke(app, [*args, "-f", "json"]).stdout)
    (row,) = [row for row in data["cost"]["tokenCosts"] if row["model"] == "qwen3-small"]
    assert row["after"] == {"fullLoad": round(4.775 / (400 * 3600) * 1e6, 4), "expectedLoad": round(3 * 4.775 / 3.6, 4)}
