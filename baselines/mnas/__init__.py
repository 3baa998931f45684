"""M-NAS (Wang et al., AAAI 2020): meta neural architecture search across tasks, and its MAML baseline.

Run by the dedicated ``adagrow meta`` command (``baselines.mnas.cli``), not by the runner: episodic
meta-learning has no epochs over one dataset (see the README's "M-NAS" section).  One file per job:
``episodes`` (task samplers), ``supernet`` (search space, meta-weights), ``encoder`` (task auto-encoder,
modulation), ``controller`` (task-aware architecture policy), ``maml`` (inner loop), ``meta`` (the
meta-training loop, evaluation, checkpoints and record), ``config`` (the run's frozen config).
"""
