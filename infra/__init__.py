"""slm-deploy: small language models on Kubernetes, hardened, observable and autoscaled."""

__version__ = "0.1.0"
