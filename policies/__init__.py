"""slm-deploy's Pulumi CrossGuard policy pack.

The folder is both a Pulumi policy pack (the Pulumi CLI runs ``__main__.py`` with this folder as the
script directory) and an importable package (``import policies.pack`` from the repository root).
Importing the package, :mod:`policies.pack` or any rule has no side effects; only ``__main__.py``
starts the analyzer's gRPC server.
"""
