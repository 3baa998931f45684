"""Pruning baselines (BN-slimming, magnitude, 2:4, Wanda, DSP): each a Method of the one runner, registered on import.

Each is a pipeline pretrain (or --pretrained) → prune → fine-tune in one run; see ``pipeline.py``.
"""

from baselines.prune import dsp, magnitude, slim, wanda  # noqa: F401  importing registers the methods
