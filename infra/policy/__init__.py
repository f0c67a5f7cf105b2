"""Run slm-deploy's policy pack offline and render its results.

Public API (imports are lazy; importing this package is cheap):

* :func:`infra.policy.analyzer.run_policy_pack` -> :class:`infra.policy.model.PolicyReport`
* :mod:`infra.policy.reports`: ``render_text``, ``render_json``, ``render_sarif``, ``render_junit``,
  ``render_markdown``
* :func:`infra.policy.catalogue.render_catalogue` (the content of ``docs/policies.md``)
"""
