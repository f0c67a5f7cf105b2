"""Post-deploy verification: rollout, runtime hardening in each model pod (testinfra), a chat smoke test."""
