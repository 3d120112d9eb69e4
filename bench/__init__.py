"""disbench: a PyTorch benchmark suite for disentangled representation learning."""

__version__ = "0.1.0"
