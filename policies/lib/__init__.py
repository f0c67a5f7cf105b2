"""Shared building blocks of the policy pack: rule metadata and wrapper, waivers, resource helpers."""
