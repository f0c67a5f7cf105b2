"""The names a canary rollout (``models[].versions``, docs/canary.md) puts on rendered objects, shared by the
program that renders them and the pack rules that judge them."""

from __future__ import annotations

#: Pod and object labels of a revision: its name (part of its Deployment's selector) and its track.
VERSION_LABEL = "slm-deploy.io/version"
TRACK_LABEL = "slm-deploy.io/track"
#: The stable-versus-canary comparison alerts (infra/monitoring/canary_rules.py), labelled with the model's name.
TTFT_ALERT = "SlmCanaryTimeToFirstTokenWorse"
ERROR_ALERT = "SlmCanaryErrorRatioWorse"
COMPARISON_ALERTS = (TTFT_ALERT, ERROR_ALERT)
