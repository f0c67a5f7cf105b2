"""Cost per million output tokens in Prometheus: recording rules from the price table and the engines' own token
counters, checked and proven by promtool, and the overview dashboard's cost panels."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from infra.monitoring import MonitoredModel, render_rules, rules_yaml
from infra.monitoring.cost_rules import COST_PER_MILLION, NODE_COST, TOKENS_PER_HOUR, cost_rule_group
from infra.monitoring.dashboards import render_dashboards
from tests.helpers import installed

#: USD an hour for one replica's nodes (a test input: the rule takes it from the price table in a stack).
REPLICA_COST = 0.9
VLLM = MonitoredModel("chat", "slm-chat", "vllm", "phi", gpu_count=1, replica_cost_per_hour=REPLICA_COST)
LLAMACPP = MonitoredModel("tiny", "slm-tiny", "llamacpp", "smollm2", replica_cost_per_hour=REPLICA_COST)
OLLAMA = MonitoredModel("micro", "slm-micro", "ollama", "qwen3-micro", replica_cost_per_hour=0.1)
UNPRICED = MonitoredModel("free", "slm-free", "vllm", "free", gpu_count=1)


def test_rules_only_for_priced_models_whose_engine_counts_tokens() -> None:
    assert cost_rule_group(OLLAMA) is None  # no token counter (ollama#3144)
    assert cost_rule_group(UNPRICED) is None  # no figure: no rule rather than a wrong one
    names = [group["name"] for group in render_rules([VLLM, LLAMACPP, OLLAMA, UNPRICED])["groups"]]
    assert names[-2:] == ["slm-deploy.slm-chat.chat.cost", "slm-deploy.slm-tiny.tiny.cost"]
    group = cost_rule_group(LLAMACPP)
    assert group is not None
    assert (
        'llamacpp:tokens_predicted_total{namespace="slm-tiny",pod=~"tiny-[a-z0-9]+-[a-z0-9]+"}'
        in (group["rules"][1]["expr"])
    )


def test_promtool_checks_and_proves_the_cost_per_million_tokens(tmp_path: Path) -> None:
    binary = installed("promtool", "prometheus")
    rules = tmp_path / "cost.rules.yaml"
    rules.write_text(rules_yaml(render_rules([VLLM, LLAMACPP])), encoding="utf-8")
    checked = subprocess.run([binary, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # Two vLLM replicas available, their counters growing 3000 tokens a minute each (100 tokens/s in all); one
    # llama.cpp server growing 6000 a minute (100 tokens/s). By hand: vLLM 0.9 x 2 = 1.8 USD/h over 360,000
    # tokens/h = 5 USD per 1M; llama.cpp 0.9 x 1 = 0.9 USD/h over 360,000 tokens/h = 2.5 USD per 1M.
    series = [
        {
            "series": 'kube_deployment_status_replicas_available{namespace="slm-chat",deployment="chat"}',
            "values": "2x120",
        },
        {
            "series": 'vllm:generation_tokens_total{namespace="slm-chat",model_name="phi",pod="chat-7d9f-x1"}',
            "values": "0+3000x120",
        },
        {
            "series": 'vllm:generation_tokens_total{namespace="slm-chat",model_name="phi",pod="chat-7d9f-x2"}',
            "values": "0+3000x120",
        },
        {
            "series": 'kube_deployment_status_replicas_available{namespace="slm-tiny",deployment="tiny"}',
            "values": "1x120",
        },
        {"series": 'llamacpp:tokens_predicted_total{namespace="slm-tiny",pod="tiny-5c6b-a1"}', "values": "0+6000x120"},
    ]
    chat = '{namespace="slm-chat",model="chat"}'
    tiny = '{namespace="slm-tiny",model="tiny"}'
    expected = [
        (NODE_COST + chat, 1.8),
        (TOKENS_PER_HOUR + chat, 360000),
        (COST_PER_MILLION + chat, 5),
        (COST_PER_MILLION + tiny, 2.5),
    ]
    tests = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {"expr": name, "eval_time": "90m", "exp_samples": [{"labels": name, "value": value}]}
                    for name, value in expected
                ],
            },
            {
                # No tokens in the last hour (idle, or no traffic yet): no figure, not a division by zero.
                "interval": "1m",
                "input_series": [series[0], {"series": series[1]["series"], "values": "5x120"}],
                "promql_expr_test": [{"expr": COST_PER_MILLION, "eval_time": "90m", "exp_samples": []}],
            },
        ],
    }
    test_file = tmp_path / "cost.test.yaml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False, width=1000), encoding="utf-8")
    run = subprocess.run(
        [binary, "test", "rules", test_file.name], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_overview_shows_cost_panels_only_when_some_model_is_priced() -> None:
    overview = json.loads(render_dashboards([VLLM, OLLAMA])["slm-overview.json"])
    titles = [panel["title"] for panel in overview["panels"]]
    assert "USD per 1M output tokens (node cost over tokens generated in the last hour)" in titles
    exprs = json.dumps(overview)
    assert COST_PER_MILLION in exprs and NODE_COST in exprs
    assert COST_PER_MILLION not in render_dashboards([UNPRICED, OLLAMA])["slm-overview.json"]
