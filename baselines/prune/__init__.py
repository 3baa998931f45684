"""Pruning baselines (BN-slimming, magnitude, 2:4, Wanda, DSP): each a Method of the one runner, registered on import."""
