"""Pulumi components, one concern each, composed per stack by :mod:`infra.platform`."""
