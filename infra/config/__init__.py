"""Typed stack configuration."""
