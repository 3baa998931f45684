"""Quantization baselines (BAMC): each a Method of the one runner, registered on import."""

from baselines.quant import bamc  # noqa: F401  importing registers the method
