"""Model weights as an OCI image, for image volumes (docs/image-volume-weights.md)."""
