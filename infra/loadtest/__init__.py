"""Serving benchmark: TTFT, inter-token latency and throughput of an OpenAI-compatible endpoint."""
