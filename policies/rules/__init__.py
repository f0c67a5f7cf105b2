"""The rules of the pack, one per folder, each with its fixtures beside it.

A rule folder holds ``__init__.py`` (defining ``RULE``, or ``make_rule`` for rules that need the
list of the others) and ``fixtures/pass-*.yaml`` / ``fixtures/fail-*.yaml``.
"""

from __future__ import annotations

from importlib import import_module

from ..lib.rule import Rule

#: Rule folders in catalogue order (governance rules are added by :mod:`policies.registry`).
RULE_MODULES = (
    "no_privileged_containers",
    "no_privilege_escalation",
    "drop_all_capabilities",
    "run_as_non_root",
    "seccomp_profile",
    "no_host_namespaces",
    "restricted_volume_types",
    "no_host_ports",
    "no_host_process",
    "baseline_capabilities",
    "apparmor_profile",
    "selinux_options",
    "proc_mount_default",
    "safe_sysctls",
    "no_probe_host",
    "read_only_root_filesystem",
    "resource_requests_limits",
    "gpu_limits_match_requests",
    "model_server_ephemeral_storage",
    "model_server_priority",
    "serving_probes",
    "no_pod_token_automount",
    "image_tag_pinned",
    "image_volume_pinned",
    "allowed_image_registries",
    "secrets_by_reference",
    "service_account_no_automount",
    "namespace_pod_security",
    "no_default_namespace",
    "default_deny_network_policy",
    "no_public_load_balancer",
    "egress_scope",
    "endpoint_picker_secure_serving",
    "inference_pool_members",
    "canary_hardening_parity",
    "canary_comparison_alert",
    "canary_route_weights",
    "model_allow_list",
    "client_token_budget",
    "rate_limit_store_hardened",
    "helm_no_public_services",
    "helm_no_privileged_workloads",
    "helm_grafana_authentication",
    "helm_raw_values",
    "helm_dangerous_values",
    "helm_log_retention",
    "engine_arguments",
    "engine_argument_allow_list",
    "model_servers_check_keys",
    "min_replicas",
    "scale_to_zero",
    "pod_disruption_budget",
    "vpa_gpu_recommendation_only",
    "gpu_time_slicing",
    "zone_topology_spread",
    "protect_stateful_resources",
    "aks_entra_id",
    "aks_api_server_access",
    "aks_workload_identity",
    "aks_network_policy",
    "aks_auto_upgrade",
    "aks_gpu_pool_taint",
    "aks_no_spot_gpu",
    "aks_node_provisioning_limits",
    "key_vault_secret_scope",
    "monthly_budget",
    "cost_unpriced",
    "environment_binding",
    "stack_label_keys",
)


def load_rules() -> list[Rule]:
    return [import_module(f"{__name__}.{module}").RULE for module in RULE_MODULES]
