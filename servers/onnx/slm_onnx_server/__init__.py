"""An OpenAI-compatible HTTP server for models in the ONNX Runtime GenAI format."""

__version__ = "0.1.0"
