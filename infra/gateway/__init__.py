"""What the entry point renders for Envoy AI Gateway (specs, not components): docs/quotas.md."""
